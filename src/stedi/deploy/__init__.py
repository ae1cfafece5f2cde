"""Deployment as code: what a cloud account needs to run stedi, written as templates to review and apply.

`aws.py`: `stedi deploy aws` (a CloudFormation template for S3, Glue, IAM, Secrets Manager and Athena), with
`parameters.py` (what a stack is told: readers, the Athena cutoff, a kept database and secret) and `readers.py`
(the Athena readers' policy).
Nothing here calls a cloud API: the commands write files, and the docs (docs/aws.md) say how to apply them.
"""
