"""Deployment as code: what a cloud account needs to run stedi, written as templates to review and apply.

`aws.py`: `stedi deploy aws` (a CloudFormation template for S3, Glue, IAM, Secrets Manager and Athena).
Nothing here calls a cloud API: the commands write files, and the docs (docs/aws.md) say how to apply them.
"""
