//! Credentials that erpdrop obtains at run time rather than reads: an OAuth2 access
//! token (client credentials, RFC 6749 4.4) or a session from a login request. What
//! they are made from comes from the environment, and is masked from the moment it is
//! read, like every other secret of the target.

use serde::Deserialize;

/// `auth.oauth2 = { token_url, client_id_env, client_secret_env, scope, client_auth }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OAuth2Spec {
    token_url: Option<String>,
    client_id_env: Option<String>,
    client_secret_env: Option<String>,
    scope: Option<String>,
    #[serde(default)]
    client_auth: ClientAuth,
}

/// How the client authenticates at the token endpoint (RFC 6749 2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP basic with the client id and secret (what RFC 6749 says servers must take).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Form,
}

/// `auth.session = { url, method, body, token_pointer, header, value }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionSpec {
    url: Option<String>,
    method: Option<String>,
    body: Option<String>,
    token_pointer: Option<String>,
    header: Option<String>,
    value: Option<String>,
}

/// A credential obtained at run time.
#[derive(Clone, PartialEq, Eq)]
pub enum Login {
    OAuth2(OAuth2),
    Session(Session),
}

/// OAuth2 client credentials, resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuth2 {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
}

/// A login request and where its answer keeps the session.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub url: String,
    /// `POST` unless the config says otherwise.
    pub method: String,
    /// The request's body with `{env:VAR}` filled in (a secret: it holds the password).
    pub body: Option<String>,
    /// Where the answer's JSON holds the session token; `None`: the session is the
    /// cookies the answer sets.
    pub token_pointer: Option<String>,
    /// The header that carries the session on later requests (default `Cookie` for a
    /// cookie session, `Authorization` for a token).
    pub header: String,
    /// Its value, with `{token}` for the token (default `Bearer {token}` for a token;
    /// for a cookie session, `{token}` is the cookies as `name=value; name=value`).
    pub value: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::OAuth2(o) => write!(
                f,
                "OAuth2 {{ token_url: {:?}, scope: {:?}, client_auth: {:?}, client: <secret> }}",
                o.token_url, o.scope, o.client_auth
            ),
            Login::Session(s) => write!(
                f,
                "Session {{ {} {}, token_pointer: {:?}, header: {:?}, body: <secret> }}",
                s.method, s.url, s.token_pointer, s.header
            ),
        }
    }
}

/// Reads (and masks) a variable of the environment for the key at these names.
pub(super) type EnvReader<'a> = &'a dyn Fn(&[&str], &str) -> Result<String, super::ConfigErrors>;
/// Makes the error of a key of `[target]`.
pub(super) type KeyError<'a> = &'a dyn Fn(&[&str], String) -> super::ConfigErrors;

/// What resolving a login needs from the config loader: how to make an error at a key
/// of `[target]`, and how to read (and mask) a variable of the environment.
pub(super) struct Resolver<'a> {
    pub err: KeyError<'a>,
    pub env: EnvReader<'a>,
}

fn http_url(
    r: &Resolver<'_>,
    keys: &[&str],
    url: Option<&String>,
) -> Result<String, super::ConfigErrors> {
    match url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(u.clone()),
        Some(u) => Err((r.err)(
            keys,
            format!("{u:?} must start with http:// or https://"),
        )),
        None => Err((r.err)(keys, "the URL is missing".into())),
    }
}

fn pointer(
    r: &Resolver<'_>,
    keys: &[&str],
    p: &Option<String>,
) -> Result<Option<String>, super::ConfigErrors> {
    match p.as_deref() {
        None | Some("") => Ok(None),
        Some(p) if p.starts_with('/') => Ok(Some(p.to_string())),
        Some(p) => Err((r.err)(
            keys,
            format!("{p:?} is not a JSON pointer (it starts with /, e.g. \"/access_token\")"),
        )),
    }
}

impl OAuth2Spec {
    pub(super) fn resolve(&self, r: &Resolver<'_>) -> Result<OAuth2, super::ConfigErrors> {
        let at = |k: &'static str| ["auth", "oauth2", k];
        let token_url = http_url(r, &at("token_url"), self.token_url.as_ref())?;
        let var = |k: &'static str, v: &Option<String>| match v {
            Some(v) => (r.env)(&at(k), v),
            None => Err((r.err)(
                &at(k),
                format!("oauth2 needs {k}, the environment variable that holds it"),
            )),
        };
        Ok(OAuth2 {
            token_url,
            client_id: var("client_id_env", &self.client_id_env)?,
            client_secret: var("client_secret_env", &self.client_secret_env)?,
            scope: self.scope.clone().filter(|s| !s.trim().is_empty()),
            client_auth: self.client_auth,
        })
    }
}

impl SessionSpec {
    pub(super) fn resolve(&self, r: &Resolver<'_>) -> Result<Session, super::ConfigErrors> {
        let at = |k: &'static str| ["auth", "session", k];
        let url = http_url(r, &at("url"), self.url.as_ref())?;
        let method = self.method.clone().unwrap_or_else(|| "POST".into());
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err((r.err)(
                &at("method"),
                format!("{method:?} is not an HTTP method (POST, GET)"),
            ));
        }
        let body = match &self.body {
            Some(b) => Some(fill_env(b, &|var| (r.env)(&at("body"), var), &|msg| {
                (r.err)(&at("body"), msg)
            })?),
            None => None,
        };
        let token_pointer = pointer(r, &at("token_pointer"), &self.token_pointer)?;
        let (header, value) = match &token_pointer {
            Some(_) => ("Authorization", "Bearer {token}"),
            None => ("Cookie", "{token}"),
        };
        let value = self.value.clone().unwrap_or_else(|| value.to_string());
        if !value.contains("{token}") {
            return Err((r.err)(
                &at("value"),
                format!("{value:?} must contain {{token}}, where the session goes"),
            ));
        }
        Ok(Session {
            url,
            method: method.to_ascii_uppercase(),
            body,
            token_pointer,
            header: self.header.clone().unwrap_or_else(|| header.to_string()),
            value,
        })
    }
}

/// `{env:VAR}` in a text replaced by the variable's value (read through `env`, which
/// masks it); `{{` and `}}` stay as they are (JSON bodies are full of braces).
fn fill_env(
    text: &str,
    env: &dyn Fn(&str) -> Result<String, super::ConfigErrors>,
    err: &dyn Fn(String) -> super::ConfigErrors,
) -> Result<String, super::ConfigErrors> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("{env:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 5..];
        let Some(end) = after.find('}') else {
            return Err(err(format!("{{env:... is not closed in {text:?}")));
        };
        let var = &after[..end];
        if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(err(format!(
                "{{env:{var}}} does not name an environment variable"
            )));
        }
        out.push_str(&env(var)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_error::{ConfigError, ConfigErrors};

    fn no_err(msg: String) -> ConfigErrors {
        ConfigError::new(std::path::Path::new("t"), msg).into()
    }

    #[test]
    fn env_placeholders_are_filled_and_braces_kept() {
        let env = |v: &str| -> Result<String, ConfigErrors> {
            match v {
                "U" => Ok("manager".into()),
                "P" => Ok("s3cr{e}t".into()),
                other => Err(no_err(format!("no {other}"))),
            }
        };
        let body = fill_env(
            r#"{"UserName": "{env:U}", "Password": "{env:P}", "CompanyDB": "SBO"}"#,
            &env,
            &no_err,
        )
        .unwrap();
        assert_eq!(
            body,
            r#"{"UserName": "manager", "Password": "s3cr{e}t", "CompanyDB": "SBO"}"#
        );
        assert!(fill_env("{env:NOPE}", &env, &no_err).is_err());
        assert!(fill_env("{env:U", &env, &no_err).is_err());
        assert!(fill_env("{env:A B}", &env, &no_err).is_err());
    }
}
