//! Role credentials minted by an STS endpoint (a moto server on loopback) instead of
//! [`crate::credentials_for`]'s made-up keys, so that a child `aws s3api list-buckets`
//! against that moto sees the account's own identity and buckets.
//!
//! moto's `AssumeRole` takes the account from the role ARN and accepts any signature, so
//! one plain HTTP/1.0 POST (no TLS, no SDK, no new crate) is all a call needs.

use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// The keys `AssumeRole` on `endpoint` (`http://host:port[/path]`) returns for `role` in
/// `account_id`: access key id, secret access key, session token.
pub fn assume_role(endpoint: &str, account_id: &str, role: &str) -> io::Result<(String, String, String)> {
    let rest = endpoint.strip_prefix("http://").ok_or_else(|| invalid(format!("not an http:// URL: {endpoint}")))?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A{account_id}%3Arole%2F{role}\
         &RoleSessionName=fake-portal&DurationSeconds=3600"
    );
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIAFAKEPORTAL/20250101/us-east-1/sts/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = response.find(&open).map(|i| i + open.len());
        let end = start.and_then(|s| response[s..].find(&format!("</{name}>")).map(|e| s + e));
        start.zip(end).map(|(s, e)| response[s..e].to_owned())
    };
    match (tag("AccessKeyId"), tag("SecretAccessKey"), tag("SessionToken")) {
        (Some(key), Some(secret), Some(session)) => Ok((key, secret, session)),
        _ => Err(invalid(format!("no credentials in the STS answer: {}", response.lines().next().unwrap_or_default()))),
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
