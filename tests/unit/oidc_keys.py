"""Two fixed 2048-bit RSA keys and an RS256 signer, for the OIDC unit tests only.

Generated once (pure Python, Miller-Rabin) so the tests sign ID tokens without a
cryptography library and without spending seconds on key generation. Never use these
anywhere but tests: the private exponents are right here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from compute.auth.jws import _SHA256_DIGEST_INFO, RsaPublicKey, b64url_encode

E = 65537
N1 = int(
    "c981d710b7e883d4c1892aac32d2254a09bc4990325d6b69bec415be0d398a6f9a33c9f433834552167ab377"
    "84d435bc18d17302424f15016d7ca585c8ddef7176809a6ee5316fa3c2c23a3a7782e4108e057bd6fc82e9a1"
    "1f8938e8f079a152272d5e4170b1d9dba207648070cf05a64b1814ec12c5d13ada0bf9a0f49a15b273e928c6"
    "b600818fb9b28525d13df2be0e7234994346f101e7a0dab67e4dce3eba5e95b8dc8e6df4a0aa717a81756cb4"
    "d9d2a82cf7b229c85540c6900479606ad14df1f7f334222a5359305701823452e9186303e168d2beb3490cfe"
    "998995b529375b888de39414bea4e50c724490ead4e475d294209eaa6d5db70875bd3171",
    16,
)
D1 = int(
    "406a472bcafe831602002d29fadcfe9a9a5e1c4e022ba6e898d8e9f2651bddcb2b4a1ee6f788a1224a9952c1"
    "842eaa36c4e03f999b44d87c2a59cc37e62c3c1cd33aed234214f99129f318d613da3db9a50ccfb7bbe4c576"
    "82344583014c806b58a6c218bd43bd56de86ea73bc9c113c45891f371011387f4db0c24dd7a36207a6825bc9"
    "4fa41ad88607e62f068d3fe36e388eaa8bae91a78183f7b30f4065934b3fc346355658c35142ef0d73fd7db6"
    "d39a4fa89023e3bd8ce26164ae141de2440fc711662ff113bba8b8fc5e9cb025ea33e9dcc3554cbdfc32c38f"
    "002b2724b30174890787b5e865e8bbb0f56314c5a01c508ea578356ea1e77c7bdfcda7f9",
    16,
)
N2 = int(
    "af9c202bd410f02c8bc5ced2710054c13190c9eb110081de7fee26ef0f042785cc08f12bf1f26a099d7d46ee"
    "1cdd4a9c95b56f38785c175eecfc1b3805caa8b1cb2c3f82a1756088ccb135acb6459e06aca9809e5477e056"
    "5b7f61bddb4b401ee40c231ecb43858ddcab29da5ee2bba45725fddaa7fd17de24bede084b09d82e6f476a30"
    "4125f249dfde42b0634841a987b07eba2bfc2ec514fe73dbac902cb5a8da713fff7d89829f80e943256c9857"
    "e6a3306388d834a9094ea54882a7838a3792f5313c83c03d3213c7c782af1b2e16d576017758b15e1bc85852"
    "d90fa0ad61dd0604109c83165e7d06a78a9aa67f05a61b25397f44d6586ffb64da706789",
    16,
)
D2 = int(
    "dfd99058ce1659512f4a92fd45f63a139a6f0a348e93aaf848f2f6c63cc9fae75ed2f73a214bf547146e2100"
    "5de2e7bcfa4930e136eb8d0effdfcd82783f811241fec1666f12045fdd2cf7529575e09e797207f5cb8e9375"
    "01653ade9caf2ba934e113d3a91f051b7472eb02e578f7dfe10718b4a4f6c679f1352c2a3e1cea6709a7f4b1"
    "4f955d8dd706763b106104596925bc9c9f02ba254358e6a9a5e6f3218cfa0431e94b541499ec827e62bf535a"
    "b543cce90f3ca45c1c427ad886e165ce2f0049c08dee477cf0514ea4e8cbf93e0fbee6cb90db85853ea0e482"
    "8c13fd0ce1405f814bf3bdb5e9a4cc8fe88b58a1e201cb37d1011d03e150c2f76ad90c5",
    16,
)


def jwk(n: int, kid: str, **extra: Any) -> dict[str, Any]:
    size = (n.bit_length() + 7) // 8
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": b64url_encode(n.to_bytes(size, "big")),
        "e": b64url_encode(E.to_bytes(3, "big")),
        **extra,
    }


def public(n: int, kid: str | None = None) -> RsaPublicKey:
    return RsaPublicKey(n=n, e=E, kid=kid)


def sign(n: int, d: int, data: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 8.2.1)."""
    k = (n.bit_length() + 7) // 8
    t = _SHA256_DIGEST_INFO + hashlib.sha256(data).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


def make_jwt(
    claims: dict[str, Any], *, n: int = 0, d: int = 0, kid: str | None = "k1", **header: Any
) -> str:
    n, d = n or N1, d or D1
    head = {"alg": "RS256", "typ": "JWT", **header}
    if kid is not None:
        head["kid"] = kid
    first = b64url_encode(json.dumps(head).encode())
    second = b64url_encode(json.dumps(claims).encode())
    signing_input = f"{first}.{second}".encode()
    return f"{first}.{second}.{b64url_encode(sign(n, d, signing_input))}"
