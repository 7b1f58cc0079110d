"""ZITADEL's official Python SDK against the oauth function, unchanged, then an independent
JWT library (PyJWT) checking the token it got against the published JWKS.

    python oauth_client.py HOST CLIENT_ID [SCOPE ...]   (the secret on stdin)

HOST is the issuer (discovery at HOST/.well-known/openid-configuration). Gets a token with
the SDK's default scopes, then one with SCOPEs (when given), and prints a JSON line for
each: the token's JOSE header and claims, and what PyJWT checked; never the token or the
secret. Exits non-zero when anything fails. (One process for both: importing the SDK
takes seconds.)
"""

import json
import sys

import jwt
import requests
from zitadel_client.auth.client_credentials_authenticator import ClientCredentialsAuthenticator


def main() -> None:
    host, client_id, *scopes = sys.argv[1:]
    secret = sys.stdin.read().strip()
    check(host, ClientCredentialsAuthenticator.builder(host, client_id, secret).build())
    if scopes:
        check(host, ClientCredentialsAuthenticator.builder(host, client_id, secret).scopes(*scopes).build())


def check(host: str, authenticator: ClientCredentialsAuthenticator) -> None:
    token = authenticator.get_auth_token()
    header = jwt.get_unverified_header(token)
    discovery = requests.get(f"{host}/.well-known/openid-configuration", timeout=10).json()
    jwks = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False)
    key = jwks.get_signing_key_from_jwt(token)
    unverified = jwt.decode(token, options={"verify_signature": False})
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        issuer=discovery["issuer"],
        audience=unverified["aud"][0],
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
    )
    print(json.dumps({"header": header, "claims": claims, "verified_with_kid": key.key_id,
                      "auth_header_scheme": authenticator.get_auth_headers()["Authorization"].split(" ")[0]}),
          flush=True)


if __name__ == "__main__":
    main()
