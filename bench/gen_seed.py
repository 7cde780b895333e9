#!/usr/bin/env python3
"""Writes a devserver seed and a matching r4.toml with N secrets across V vaults
(one secret field per item), the agent key pre-registered.
usage: gen_seed.py N V PUBLIC_KEY_PEM_FILE SEED_OUT CONFIG_OUT"""
import sys

n, v, pub, seed_out, config_out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
pem = open(pub).read()
seed = ['[org]\nname = "Bench Org"\n[tenant]\nname = "Bench Tenant"\n',
        '[[agents]]\nname = "bench"\napi_key = "rk_bench000000000.bench-secret"\n'
        f'public_key = """{pem}"""\n']
env = ["[env]"]
for j in range(v):
    seed.append(f'[[vaults]]\nname = "vault-{j}"\nshared_with = ["bench"]\n')
    for i in range(j, n, v):
        seed.append(f'  [[vaults.items]]\n  name = "item-{i}"\n'
                    f'    [[vaults.items.fields]]\n    name = "value"\n    type = "SECRET"\n'
                    f'    value = "secret-value-{i:06d}-0123456789abcdef"\n')
        env.append(f'S_{i} = "r4://vault-{j}/item-{i}/value"')
open(seed_out, "w").write("\n".join(seed))
open(config_out, "w").write("\n".join(env) + "\n")
