# Input validation of the bucket module, checked against variables.tf alone: the full
# module needs the AWS provider, which cannot be installed here. Run with
# modules/test-variables.sh (it copies variables.tf and this file into a scratch directory).

variables {
  bucket_name = "my-bucket-1"
}

run "accepts_defaults" {
  command = plan
}

run "rejects_ip_address_bucket_name" {
  command = plan

  variables {
    bucket_name = "192.168.1.1"
  }

  expect_failures = [var.bucket_name]
}

run "rejects_too_short_bucket_name" {
  command = plan

  variables {
    bucket_name = "ab"
  }

  expect_failures = [var.bucket_name]
}

run "accepts_kms_key_arn" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234"
  }
}

run "rejects_kms_key_that_is_not_an_arn" {
  command = plan

  variables {
    kms_key_arn = "key"
  }

  expect_failures = [var.kms_key_arn]
}

run "rejects_duplicate_rule_ids" {
  command = plan

  variables {
    lifecycle_rules = [{ id = "a" }, { id = "a" }]
  }

  expect_failures = [var.lifecycle_rules]
}

run "accepts_glacier_transition" {
  command = plan

  variables {
    lifecycle_rules = [{ id = "a", transitions = [{ days = 30, storage_class = "GLACIER" }] }]
  }
}

run "rejects_unknown_storage_class" {
  command = plan

  variables {
    lifecycle_rules = [{ id = "a", transitions = [{ days = 30, storage_class = "COLD" }] }]
  }

  expect_failures = [var.lifecycle_rules]
}

run "rejects_zero_expiration_days" {
  command = plan

  variables {
    lifecycle_rules = [{ id = "a", expiration_days = 0 }]
  }

  expect_failures = [var.lifecycle_rules]
}

run "accepts_full_lifecycle_rule" {
  command = plan

  variables {
    lifecycle_rules = [{ id = "all", transitions = [{ days = 30, storage_class = "STANDARD_IA" }, { days = 90, storage_class = "GLACIER_IR" }], expiration_days = 365, noncurrent_version_transitions = [{ days = 30, storage_class = "GLACIER" }], noncurrent_version_expiration_days = 90, abort_incomplete_multipart_upload_days = 3 }]
  }
}

run "rejects_reserved_suffix" {
  command = plan

  variables {
    bucket_name = "data-s3alias"
  }

  expect_failures = [var.bucket_name]
}
