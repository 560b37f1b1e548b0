//! `schema_registry.url` taken apart: the base URL requests are built on,
//! and the credentials of its user information.
//!
//! The credentials leave the URL here and travel only as an HTTP
//! `Authorization` header, so no URL journeyd builds or logs carries them.

use percent_encoding::percent_decode_str;

use super::error::RegistryError;
use crate::config::Secret;

/// A registry URL, split.
#[derive(Debug)]
pub(super) struct RegistryUrl {
    /// Scheme, host, port and path, without user information or trailing
    /// slash: `https://registry.example.com/sr`.
    pub base: String,
    /// User and password of `user:password@`, percent-decoded.
    pub credentials: Option<(Secret, Secret)>,
}

impl RegistryUrl {
    /// Splits `url`: `http://` or `https://`, an optional
    /// `user[:password]@`, a host, an optional path; no query or fragment.
    pub fn parse(url: &str) -> Result<RegistryUrl, RegistryError> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
            .ok_or(RegistryError::InvalidUrl(
                "must start with http:// or https://",
            ))?;
        if rest.contains(['?', '#']) {
            return Err(RegistryError::InvalidUrl(
                "must not have a query or fragment",
            ));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(RegistryError::InvalidUrl("must name a host"));
        }
        let credentials = userinfo.map(credentials).transpose()?;
        Ok(RegistryUrl {
            base: format!("{scheme}://{host}{}", path.trim_end_matches('/')),
            credentials,
        })
    }
}

/// `user[:password]`, each percent-decoded.
fn credentials(userinfo: &str) -> Result<(Secret, Secret), RegistryError> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |part: &str| {
        percent_decode_str(part)
            .decode_utf8()
            .map(|text| Secret::new(text.into_owned()))
            .map_err(|_| RegistryError::InvalidUrl("credentials must be UTF-8 once decoded"))
    };
    Ok((decode(user)?, decode(password)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_keeps_host_port_and_path_but_no_credentials() {
        let url =
            RegistryUrl::parse("https://key:s%2Fcr%40t@registry.example.com:8081/sr/").unwrap();
        assert_eq!(url.base, "https://registry.example.com:8081/sr");
        let (user, password) = url.credentials.unwrap();
        assert_eq!((user.expose(), password.expose()), ("key", "s/cr@t"));

        let url = RegistryUrl::parse("http://registry:8081").unwrap();
        assert_eq!(url.base, "http://registry:8081");
        assert!(url.credentials.is_none());

        let url = RegistryUrl::parse("http://token@registry").unwrap();
        let (user, password) = url.credentials.unwrap();
        assert_eq!((user.expose(), password.expose()), ("token", ""));
    }

    #[test]
    fn unusable_urls_are_refused_without_echoing_them() {
        for bad in [
            "registry:8081",
            "ftp://registry",
            "http://",
            "http://u:p@/x",
            "http://registry/?a=b",
            "http://registry#x",
            "http://u:%FF@registry",
        ] {
            let err = RegistryUrl::parse(bad).unwrap_err();
            assert!(matches!(err, RegistryError::InvalidUrl(_)), "{bad}: {err}");
        }
    }
}
