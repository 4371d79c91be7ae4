# What the AWS data sources would read, for `terraform test` with a mocked provider (no
# credentials, no calls): values in the shape the resources' own validation accepts.
mock_data "aws_iam_policy_document" {
  defaults = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition = "aws"
  }
}

mock_data "aws_region" {
  defaults = {
    id   = "eu-west-1"
    name = "eu-west-1"
  }
}

# Known at plan time, so tests can assert on the addresses the outputs build from them.
mock_resource "aws_lb" {
  override_during = plan
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/mock-lb/0123456789abcdef"
    dns_name   = "mock-lb-0123456789.elb.eu-west-1.amazonaws.com"
    arn_suffix = "app/mock-lb/0123456789abcdef"
  }
}
