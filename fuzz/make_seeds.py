#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/<target>/ from the
test vectors (contract/tests/data/r4-test-vectors.json by default).

    python3 fuzz/make_seeds.py [path/to/r4-test-vectors.json]

Deterministic: the same vectors give the same files, named by content hash,
so re-running it is a no-op unless the vectors change. libFuzzer only reads
these directories; what it discovers goes to fuzz/corpus/<target>/ (ignored
by git). See docs/FUZZING.md.
"""

import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VECTORS = os.path.join(HERE, "..", "contract", "tests", "data", "r4-test-vectors.json")


def dump(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def write_all(target, blobs):
    d = os.path.join(HERE, "seeds", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for blob in blobs:
        if isinstance(blob, str):
            blob = blob.encode()
        name = hashlib.sha1(blob).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(blob)
    print(f"{target}: {len(blobs)} seeds")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("R4_VECTORS", DEFAULT_VECTORS)
    with open(path, encoding="utf-8") as f:
        v = json.load(f)

    env = v["envelopes"]
    write_all("envelope", [e["envelope"] for e in env["valid"] + env["invalid"]])

    item = v["itemDetail"]["item"]
    summary = v["vaultSummary"]
    vault_id = summary["checkpoint"]["vaultId"]
    refs = [
        f"r4://{vault_id}/{item['id']}/{item['fields'][0]['id']}",
        "r4://Production Secrets/Production DB/Password",
        "r4://Production Secrets/CI%2FCD/100%25 key",
        "r4://Edge/TLS/private%2fkey",
        "r4://V/I/F%2",
        "r4://V//F",
        "https://V/I/F",
    ] + [f"r4://Vault/{n['item']}/{n['field']}" for n in v["envNames"]]
    write_all("reference", refs)

    with open(os.path.join(HERE, "..", "r4.toml.example"), encoding="utf-8") as f:
        example = f.read()
    names = v["envNames"]
    configs = [
        example,
        "[env]\n" + "".join(f'{n["name"]} = "r4://Vault/{n["item"]}/{n["field"]}"\n' for n in names),
        '[r4]\nbase_url = "http://127.0.0.1:8080/api/v1/machine"\napi_key_file = "k"\n'
        '[files]\nTLS = { ref = "r4://Edge/TLS/key" }\n'
        '[trust]\nsigners = ["sha256:' + "0" * 64 + '"]\n',
        '[project]\nname = "Demo Project"\ninclude = ["PRODUCTION_*", "{A,B}?[!x]"]\nexclude = ["*_TEST"]\n',
    ]
    write_all("config", configs)

    wk = v["wrappedKey"]["object"]
    item_list = {
        "items": summary["items"],
        "vaultId": vault_id,
        "count": len(summary["items"]),
        "checkpoint": summary["checkpoint"],
    }
    detail = dict(item, checkpoint=v["itemDetail"]["checkpoint"])
    sd = v["signerDirectory"]
    directory = {"vaultId": sd["vaultId"], "signers": sd["signers"], "treeHead": sd["treeHead"]}
    small_directory = dict(directory, signers=sd["signers"][:1])
    sync = {
        "cursor": "c1",
        "mode": "full",
        "vaults": [
            {
                "vault": {"id": vault_id, "name": "Production Secrets", "isEncrypted": True,
                          "encryptionKeyId": wk["encryptionKeyId"]},
                "wrappedKey": wk,
                "signers": small_directory,
                "checkpoint": summary["checkpoint"],
                "items": [detail],
            }
        ],
        "removed": {"vaultIds": [], "itemIds": []},
    }
    jcs = [dump(j["input"]) for j in v["jcs"]]
    # Regressions: inputs the wire target once crashed on (docs/FUZZING.md).
    regressions = ["45e-70", "241.5e-70"]
    write_all("wire", [dump(wk), dump(item_list), dump(detail), dump(directory), dump(sync)] + jcs + regressions)


if __name__ == "__main__":
    main()
