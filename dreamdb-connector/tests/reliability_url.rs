//! Backend URLs never leak credentials: a URL with user information is
//! refused, and neither the error's message nor its `Debug` repeats the
//! secret — also when the secret holds characters that end a URL's
//! authority (`/`, `?`, `#`), as real AWS secret keys do (they are base64
//! and often contain `/`). Regression tests of the `backend_url_parse`
//! fuzz target live here too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_connector::url::BackendUrl;

/// AWS's documented example secret (it contains `/`).
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn assert_refused_without_secret(raw: &str, secret: &str) {
    match BackendUrl::parse(raw) {
        Ok(url) => {
            let shown = format!("{url} {url:?}");
            assert!(
                !shown.contains(secret),
                "{raw:?} parsed and kept the secret"
            );
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains(secret),
                "the error for a URL with credentials repeats the secret: {shown}"
            );
        }
    }
}

#[test]
fn plain_credentials_in_a_url_are_refused_and_redacted() {
    for raw in [
        "http://AKIDEXAMPLE:plainsecret123@127.0.0.1:9000/bucket",
        "https://AKIDEXAMPLE:plainsecret123@s3.example.com/bucket/prefix",
        "http://plainsecret123@127.0.0.1:9000/bucket",
    ] {
        let err = BackendUrl::parse(raw).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("plainsecret123"), "{shown}");
    }
}

#[test]
fn secrets_with_reserved_characters_are_never_echoed() {
    for raw in [
        format!("http://AKIDEXAMPLE:{SECRET}@127.0.0.1:9000/bucket"),
        "http://uwer:pa#s,sword@hostcket".to_owned(),
        "http://AKIDEXAMPLE:se?cret-value-1@127.0.0.1:9000/bucket".to_owned(),
    ] {
        let secret = raw
            .split_once("://")
            .and_then(|(_, rest)| rest.rsplit_once('@'))
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, s)| s.to_owned())
            .unwrap();
        assert_refused_without_secret(&raw, &secret);
    }
}

#[test]
fn parsed_urls_round_trip_without_credentials() {
    for raw in [
        "memory://",
        "memory://shared-1",
        "http://127.0.0.1:9000/bucket",
        "https://s3.example.com/bucket/prefix/",
        "http://[::1]:9000/b/p",
    ] {
        let url = BackendUrl::parse(raw).unwrap();
        let printed = url.to_string();
        assert_eq!(BackendUrl::parse(&printed).unwrap(), url, "{raw}");
    }
}
