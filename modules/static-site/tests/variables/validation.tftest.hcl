# Input validation of the static-site module, checked against variables.tf alone: the full
# module needs the AWS provider, which cannot be installed here. Run with
# modules/test-variables.sh (it copies variables.tf and this file into a scratch directory).

variables {
  name = "s1"
}

run "accepts_defaults" {
  command = plan
}

run "rejects_unknown_price_class" {
  command = plan

  variables {
    price_class = "PriceClass_1"
  }

  expect_failures = [var.price_class]
}

run "rejects_certificate_outside_us_east_1" {
  command = plan

  variables {
    acm_certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
  }

  expect_failures = [var.acm_certificate_arn]
}

run "accepts_alias_with_certificate" {
  command = plan

  variables {
    acm_certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    aliases             = ["www.example.com"]
  }
}

run "rejects_uppercase_alias" {
  command = plan

  variables {
    aliases = ["WWW.example.com"]
  }

  expect_failures = [var.aliases]
}

run "accepts_error_caching_only" {
  command = plan

  variables {
    custom_error_responses = [{ error_code = 404 }]
  }
}

run "rejects_response_code_without_page" {
  command = plan

  variables {
    custom_error_responses = [{ error_code = 404, response_code = 200 }]
  }

  expect_failures = [var.custom_error_responses]
}

run "rejects_relative_response_page" {
  command = plan

  variables {
    custom_error_responses = [{ error_code = 404, response_code = 200, response_page_path = "index.html" }]
  }

  expect_failures = [var.custom_error_responses]
}

run "accepts_spa_fallback" {
  command = plan

  variables {
    custom_error_responses = [{ error_code = 404, response_code = 200, response_page_path = "/index.html" }]
  }
}

run "rejects_whitelist_without_countries" {
  command = plan

  variables {
    geo_restriction = { type = "whitelist" }
  }

  expect_failures = [var.geo_restriction]
}

run "accepts_whitelist_with_countries" {
  command = plan

  variables {
    geo_restriction = { type = "whitelist", locations = ["DE"] }
  }
}

run "rejects_bucket_name_with_double_dot" {
  command = plan

  variables {
    bucket_name = "a..b"
  }

  expect_failures = [var.bucket_name]
}

run "rejects_uppercase_name" {
  command = plan

  variables {
    name = "Site"
  }

  expect_failures = [var.name]
}

run "rejects_root_object_with_slash" {
  command = plan

  variables {
    default_root_object = "/index.html"
  }

  expect_failures = [var.default_root_object]
}

run "rejects_old_tls_policy" {
  command = plan

  variables {
    minimum_protocol_version = "TLSv1"
  }

  expect_failures = [var.minimum_protocol_version]
}

run "rejects_negative_noncurrent_days" {
  command = plan

  variables {
    noncurrent_version_expiration_days = -1
  }

  expect_failures = [var.noncurrent_version_expiration_days]
}

run "accepts_explicit_bucket_name" {
  command = plan

  variables {
    bucket_name = "www.example.com"
  }
}
