"""A Google service account's key file made for a test, and a check of what it signs.

The key pair is made here with ``cryptography`` (no real account, no download);
the file names a ``token_uri`` on loopback, so google-auth asks the test's fake
token endpoint for its access tokens, as it would ask Google's.
"""

import base64
import json
from functools import cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CLIENT_EMAIL = "tryon-worker@shop-project-1.iam.gserviceaccount.com"


@cache
def private_key():
    """One RSA key for the test run (made once: a key takes a moment)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_file(path, *, token_uri, project_id):
    """Write a service account's key file at ``path``; return ``path``."""
    pem = private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": project_id,
                "private_key_id": "0123456789abcdef",
                "private_key": pem.decode(),
                "client_email": CLIENT_EMAIL,
                "client_id": "100000000000000000001",
                "token_uri": token_uri,
            }
        )
    )
    return path


def assertion_claims(assertion):
    """The claims of the signed JWT a token request carries, once its RS256 signature
    is checked against the test's key (raises ``InvalidSignature`` otherwise)."""
    header, payload, signature = assertion.split(".")
    private_key().public_key().verify(
        _unb64(signature),
        f"{header}.{payload}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return json.loads(_unb64(payload))


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
