//! The AWS SDK set-up every AWS call of tollgate shares (price refresh, STS, Secrets
//! Manager, Cost Explorer): the default credential chain, rustls (ring) HTTPS, no second TLS
//! stack.

pub mod cost_explorer;

/// The SDK configuration of the controller's own identity for `region`. `endpoint_url`
/// overrides every service's endpoint; without it `AWS_ENDPOINT_URL` (or a per-service
/// `AWS_ENDPOINT_URL_<SERVICE>`) in the environment does, e.g. a local emulator in tests.
pub async fn sdk_config(region: &str, endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .region(aws_config::Region::new(region.to_owned()));
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// An SDK error with its sources: the SDK's own `Display` says only "dispatch failure".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
