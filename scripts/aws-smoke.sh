#!/usr/bin/env bash
# The first real run on AWS, in one command: deploy the stack, upload the job's wheels and script, land the
# data, run the Glue job once, query every table in Athena and print the counts. What this proves is what
# stedi's own tests cannot (they have no AWS account): docs/aws.md, "What only a real account proves".
#
#   scripts/aws-smoke.sh BUCKET [PREFIX] [DATA]
#
# BUCKET: a new bucket name (the stack creates it), or an existing one with STEDI_EXISTING_BUCKET=1.
# PREFIX: the root's prefix in it (default: lake). DATA: the landing files (default: ../shared/data/stedi,
# the reference data). The region is the AWS CLI's (AWS_REGION or your profile's). Needs the AWS CLI v2 with
# credentials allowed to create the stack, and stedi (`make setup`). It removes nothing: the last lines say how.
set -euo pipefail
cd "$(dirname "$0")/.."

BUCKET=${1:?usage: scripts/aws-smoke.sh BUCKET [PREFIX] [DATA]}
PREFIX=${2:-lake}
DATA=${3:-../shared/data/stedi}
STACK=${STEDI_STACK:-stedi}
OUT=deploy/aws-smoke
STEDI=${STEDI:-.venv/bin/stedi}
HOME_URI="s3://$BUCKET/$PREFIX"
existing=()
[ "${STEDI_EXISTING_BUCKET:-}" = 1 ] && existing=(--existing-bucket)

say() { printf '\n== %s\n' "$*" >&2; }

say "1/6 the template and the job's zip of wheels ($OUT)"
"$STEDI" deploy aws --bucket "$BUCKET" --prefix "$PREFIX" --out "$OUT" "${existing[@]}" >/dev/null

say "2/6 the stack $STACK (a few minutes)"
aws cloudformation deploy --stack-name "$STACK" --capabilities CAPABILITY_IAM \
  --template-file "$OUT/stedi-aws.template.json" ${STEDI_STACK_PARAMETERS:+--parameter-overrides $STEDI_STACK_PARAMETERS}

say "3/6 the job's wheels and script, into $HOME_URI/glue/"
"$STEDI" deploy aws --bucket "$BUCKET" --prefix "$PREFIX" --out "$OUT" "${existing[@]}" --no-bundle --upload >/dev/null

say "4/6 landing $DATA"
"$STEDI" --home "$HOME_URI" ingest "$DATA"

say "5/6 the Glue job, once (installing the wheels and starting Spark take a few minutes)"
run_id=$(aws glue start-job-run --job-name stedi --query JobRunId --output text)
while :; do
  state=$(aws glue get-job-run --job-name stedi --run-id "$run_id" --query JobRun.JobRunState --output text)
  case $state in
    SUCCEEDED) break ;;
    FAILED|ERROR|TIMEOUT|STOPPED)
      aws glue get-job-run --job-name stedi --run-id "$run_id" --query JobRun.ErrorMessage --output text >&2
      echo "the job's run $run_id ended $state: its logs are in CloudWatch, /aws-glue/jobs/error" >&2
      exit 1 ;;
  esac
  sleep 20
done

say "6/6 every table, counted by Athena (workgroup stedi)"
athena() {  # athena SQL: the first column of the first row
  local id state
  id=$(aws athena start-query-execution --work-group stedi --query-string "$1" --query QueryExecutionId --output text)
  while :; do
    state=$(aws athena get-query-execution --query-execution-id "$id" --query QueryExecution.Status.State --output text)
    case $state in
      SUCCEEDED) break ;;
      FAILED|CANCELLED)
        aws athena get-query-execution --query-execution-id "$id" \
          --query QueryExecution.Status.StateChangeReason --output text >&2
        return 1 ;;
    esac
    sleep 2
  done
  aws athena get-query-results --query-execution-id "$id" --query 'ResultSet.Rows[1].Data[0].VarCharValue' --output text
}
printf '%-26s %10s\n' table rows
for table in customer_landing accelerometer_landing step_trainer_landing customer_trusted accelerometer_trusted \
             step_trainer_trusted customers_curated machine_learning_curated; do
  printf '%-26s %10s\n' "$table" "$(athena "select count(*) from stedi.$table")"
done
echo "customers in machine_learning_curated: $(athena 'select count(distinct customer_key) from stedi.machine_learning_curated')"

cat >&2 <<EOF

On the reference data: 956, 81273, 28680 landing rows; machine_learning_curated 40981 rows of 482 customers.
Start the schedule when you are ready:  aws glue start-trigger --name stedi-schedule
Remove the stack (the bucket, its data, the Glue database and the secret stay):
  aws cloudformation delete-stack --stack-name $STACK
EOF
