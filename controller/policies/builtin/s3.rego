# S3: no public buckets, encryption at rest stated in code.
package tollgate.builtin.s3

import data.tollgate.builtin.lib

deny contains msg if {
	lib.enabled("S3_PUBLIC_ACCESS_BLOCK")
	some bucket in lib.changed.aws_s3_bucket
	not object.get(bucket, "module_address", "") in lib.kept.aws_s3_bucket_public_access_block
	msg := sprintf("S3_PUBLIC_ACCESS_BLOCK: %s has no aws_s3_bucket_public_access_block beside it; add one with all four settings true", [bucket.address])
}

deny contains msg if {
	lib.enabled("S3_PUBLIC_ACCESS_BLOCK")
	some block in lib.changed.aws_s3_bucket_public_access_block
	some setting in ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]
	block.change.after[setting] == false
	msg := sprintf("S3_PUBLIC_ACCESS_BLOCK: %s sets %s to false; all four settings must be true", [block.address, setting])
}

deny contains msg if {
	lib.enabled("S3_PUBLIC_ACL")
	some acl in lib.changed.aws_s3_bucket_acl
	acl.change.after.acl in {"public-read", "public-read-write", "authenticated-read"}
	msg := sprintf("S3_PUBLIC_ACL: %s grants the canned ACL %s; use private and serve content through CloudFront", [acl.address, acl.change.after.acl])
}

deny contains msg if {
	lib.enabled("S3_ENCRYPTION")
	some bucket in lib.changed.aws_s3_bucket
	not object.get(bucket, "module_address", "") in lib.kept.aws_s3_bucket_server_side_encryption_configuration
	msg := sprintf("S3_ENCRYPTION: %s has no aws_s3_bucket_server_side_encryption_configuration beside it; state SSE-S3 or SSE-KMS in code", [bucket.address])
}
