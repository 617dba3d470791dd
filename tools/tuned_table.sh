#!/bin/bash
# The tuned Table 1 on a GPU machine: each model's tuning grid in its own process (the models are small,
# so one GPU serves several at once), then every model with its selected configuration, then the report.
#
#   bash tools/tuned_table.sh DATASET DATA RESULTS_DIR [PROFILE] [SEEDS]
#   e.g. bash tools/tuned_table.sh csv ../shared/data/taobao-ecomm-2019 results cpu 1
#        bash tools/tuned_table.sh synthetic - /tmp/r smoke 1      (DATA "-": a dataset that reads no file)
#
# Reruns resume (finished trials and runs are skipped). TUNE_LIMIT (seconds, default none) bounds each
# model's grid; a model whose grid did not finish gets no selection and is left out of the table.
set -u
dataset=$1 data=$2 out=$3 profile=${4:-cpu} seeds=${5:-1}
common=(--dataset "$dataset" --profile "$profile" --results-dir "$out" ${NAME:+--name "$NAME"})
[ "$data" != "-" ] && common+=(--data "$data")
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }
python -m bench run --models pop,recent "${common[@]}" --seeds "$seeds" --no-report || exit $?  # also caches the split
echo "split ready, pop and recent done: $(elapsed)"
models=$(python -c "from bench.config import Configs; print(' '.join(e.name for e in Configs().models('table1') if e.tune_owner == e.name))")
for m in $models; do
  (${TUNE_LIMIT:+timeout $TUNE_LIMIT} python -m bench tune --models "$m" "${common[@]}" > "$out/tune_$m.log" 2>&1
   echo "tune $m: exit $? at $(elapsed)") &
done
wait
folder=$(python -c "import sys; from bench.plan import Request, dataset_folder; print(dataset_folder(Request(dataset=sys.argv[1], data=None if sys.argv[2] == '-' else sys.argv[2], profile=sys.argv[3], results_dir=__import__('pathlib').Path(sys.argv[4]))))" "$dataset" "$data" "$profile" "$out")
tuned=$(ls "$folder/tuning/"*.json 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/\.json$//' | paste -sd, -)
echo "tuned: ${tuned:-none}"
python -m bench run --models "pop,recent${tuned:+,$tuned}" --tuned "${common[@]}" --seeds "$seeds"
echo "done: $(elapsed)"
