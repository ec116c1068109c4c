output "bucket_name" {
  description = "Name of the bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the bucket, for IAM policies (objects: \"<arn>/*\")."
  value       = aws_s3_bucket.this.arn
}

output "bucket_regional_domain_name" {
  description = "Region-specific domain name of the bucket (bucket.s3.region.amazonaws.com)."
  value       = aws_s3_bucket.this.bucket_regional_domain_name
}

output "region" {
  description = "Region the bucket lives in."
  value       = aws_s3_bucket.this.region
}

output "encryption" {
  description = "Server-side encryption in use: \"AES256\" (SSE-S3) or \"aws:kms\" (SSE-KMS)."
  value       = local.sse_kms ? "aws:kms" : "AES256"
}
