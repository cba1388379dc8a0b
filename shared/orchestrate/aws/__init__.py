"""AWS adapters: the SQS queue and the Lambda runtime glue. boto3 loads lazily."""
