//! No code: this crate holds the checks of the AWS deployment, in `tests/template.rs`. They
//! read `infra/template.yaml` (the SAM template), `samconfig.toml` and the sample events in
//! `events/`, and test what `cfn-lint` and `sam validate --lint` cannot see: that the template
//! follows `docs/aws-runtime.md` (functions, queues, tables, GSIs, environment, policies,
//! alarms) and that the samples are what the functions will receive.
