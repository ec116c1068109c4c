# A test module for the drift tests: two files on the controller's disk managed by the
# test-only provider (tests/tools/test-provider), which reads them back on refresh, so an
# edit made by hand is real drift.
resource "tgtest_file" "config" {
  path    = var.path
  content = var.content
}

resource "tgtest_file" "secret" {
  path    = "${var.path}.secret"
  content = var.secret
}
