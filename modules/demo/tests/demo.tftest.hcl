# Native Terraform tests for the demo module. Run from the repository root:
#   terraform -chdir=modules/demo init && terraform -chdir=modules/demo test
# No provider is needed; the apply runs are real (terraform_data and local-exec), and
# Terraform destroys everything they created when the file finishes.

variables {
  greeting = "hello"
}

run "setup" {
  module {
    source = "./tests/setup"
  }
}

run "plan_with_defaults" {
  command = plan

  assert {
    condition     = terraform_data.app.input.greeting == "hello"
    error_message = "The app resource must carry the greeting."
  }

  assert {
    condition     = length(terraform_data.replica) == 1
    error_message = "replicas defaults to 1."
  }

  assert {
    condition     = terraform_data.app.input.size == "small" && terraform_data.app.input.enabled == true
    error_message = "settings defaults to size small, enabled true."
  }

  assert {
    condition     = output.token_set == false
    error_message = "No api_token given, so token_set must be false."
  }

  assert {
    condition     = output.marker_file == null
    error_message = "Without marker_dir there must be no marker file."
  }
}

run "rejects_zero_replicas" {
  command = plan

  variables {
    replicas = 0
  }

  expect_failures = [var.replicas]
}

run "rejects_eleven_replicas" {
  command = plan

  variables {
    replicas = 11
  }

  expect_failures = [var.replicas]
}

run "rejects_fractional_replicas" {
  command = plan

  variables {
    replicas = 1.5
  }

  expect_failures = [var.replicas]
}

run "rejects_unknown_size" {
  command = plan

  variables {
    settings = { size = "huge" }
  }

  expect_failures = [var.settings]
}

run "rejects_relative_marker_dir" {
  command = plan

  variables {
    marker_dir = "relative/dir"
  }

  expect_failures = [var.marker_dir]
}

run "rejects_empty_greeting" {
  command = plan

  variables {
    greeting = ""
  }

  expect_failures = [var.greeting]
}

run "rejects_negative_delay" {
  command = plan

  variables {
    apply_delay_seconds = -1
  }

  expect_failures = [var.apply_delay_seconds]
}

# Template- and shell-looking text must stay literal end to end: in the output, and in
# the file the local-exec writes (it is passed through the environment, not the command).
run "apply_keeps_greeting_literal" {
  variables {
    greeting   = "hello $${file(\"/etc/passwd\")} %%{ if true }x%%{ endif } $(id) `id` '\"; exit 1"
    replicas   = 3
    tags       = { team = "a" }
    settings   = { size = "large", enabled = false }
    api_token  = "not-a-real-token"
    marker_dir = run.setup.marker_dir
  }

  assert {
    condition     = output.greeting == "hello $${file(\"/etc/passwd\")} %%{ if true }x%%{ endif } $(id) `id` '\"; exit 1"
    error_message = "The greeting output must equal the input, character for character."
  }

  assert {
    condition     = file(output.marker_file) == output.greeting
    error_message = "The marker file must contain the literal greeting."
  }

  assert {
    condition     = output.marker_file == "${run.setup.marker_dir}/${output.id}.applied"
    error_message = "The marker file is named after the app resource's id."
  }

  assert {
    condition     = length(output.replica_ids) == 3
    error_message = "replicas = 3 must create three replicas."
  }

  assert {
    condition     = output.settings == { size = "large", enabled = false }
    error_message = "settings must be passed through."
  }

  assert {
    condition     = output.tags == tomap({ team = "a" })
    error_message = "tags must be passed through."
  }

  assert {
    condition     = output.token_set
    error_message = "token_set must be true when api_token is given."
  }

  assert {
    condition     = output.token_hint == "sha256:${substr(sha256("not-a-real-token"), 0, 12)}"
    error_message = "token_hint must be the token's SHA-256 fingerprint."
  }
}

# Changing only tags is an in-place update: same id, marker untouched.
run "tags_update_in_place" {
  variables {
    greeting   = "hello $${file(\"/etc/passwd\")} %%{ if true }x%%{ endif } $(id) `id` '\"; exit 1"
    replicas   = 3
    tags       = { team = "b" }
    settings   = { size = "large", enabled = false }
    api_token  = "not-a-real-token"
    marker_dir = run.setup.marker_dir
  }

  assert {
    condition     = output.id == run.apply_keeps_greeting_literal.id
    error_message = "A tags change must not replace the app resource."
  }

  assert {
    condition     = output.tags == tomap({ team = "b" })
    error_message = "tags must be updated."
  }

  assert {
    condition     = fileexists(output.marker_file)
    error_message = "The marker file must still exist."
  }
}

# Changing the greeting replaces the app resource: the old marker goes, a new one appears;
# fewer replicas destroys the extra ones. apply_delay_seconds exercises the sleep.
run "greeting_change_replaces" {
  variables {
    greeting            = "second"
    replicas            = 2
    apply_delay_seconds = 1
    marker_dir          = run.setup.marker_dir
  }

  assert {
    condition     = output.id != run.apply_keeps_greeting_literal.id
    error_message = "A greeting change must replace the app resource."
  }

  assert {
    condition     = !fileexists(run.tags_update_in_place.marker_file)
    error_message = "The replaced instance's marker file must be removed."
  }

  assert {
    condition     = file(output.marker_file) == "second"
    error_message = "The new marker file must contain the new greeting."
  }

  assert {
    condition     = length(output.replica_ids) == 2
    error_message = "replicas = 2 must leave two replicas."
  }

  assert {
    condition     = output.token_set == false && output.token_hint == ""
    error_message = "Without api_token the hint must be empty."
  }
}
