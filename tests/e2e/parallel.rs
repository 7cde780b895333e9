//! Verification spread over the cores (`src/resolve/par.rs`,
//! `src/resolve/prepare.rs`) must not change what a resolution yields: with
//! enough vaults and items for several threads, every value reaches the env
//! var it was mapped to (a mix-up between threads would swap them), and a
//! failure is reported for every env var it concerns, in the order the
//! configuration is read, with the child never started.

use crate::util::*;

const VAULTS: usize = 4;
const ITEMS_PER_VAULT: usize = 12;

fn value(v: usize, i: usize) -> String {
    format!("value-of-vault-{v}-item-{i}-0123456789")
}

/// A world of `VAULTS` vaults of `ITEMS_PER_VAULT` one-field items each,
/// all shared with the agent, and an r4.toml mapping every field.
fn wide_world(faults: &[&str]) -> World {
    let mut seed = format!(
        "[org]\nname = \"Org\"\n[tenant]\nname = \"Tenant\"\n\
         [[agents]]\nname = \"agent\"\napi_key = \"{API_KEY}\"\n\
         public_key = \"\"\"{}\"\"\"\n",
        agent_key().public().to_pem()
    );
    let mut config = String::from("[env]\n");
    for v in 0..VAULTS {
        seed += &format!("[[vaults]]\nname = \"vault-{v}\"\nshared_with = [\"agent\"]\n");
        for i in 0..ITEMS_PER_VAULT {
            seed += &format!(
                "[[vaults.items]]\nname = \"item-{i}\"\n[[vaults.items.fields]]\n\
                 name = \"value\"\ntype = \"SECRET\"\nvalue = \"{}\"\n",
                value(v, i)
            );
            config += &format!("S_{v}_{i} = \"r4://vault-{v}/item-{i}/value\"\n");
        }
    }
    let world = World::from_seed(&seed, faults);
    world.config(&config);
    world
}

#[test]
fn every_value_reaches_its_own_variable() {
    let world = wide_world(&[]);
    let out = world
        .r4exec()
        .args(["--", "env"])
        .output()
        .expect("run r4-exec");
    assert!(out.status.success(), "{}", stderr(&out));
    let env = stdout(&out);
    for v in 0..VAULTS {
        for i in 0..ITEMS_PER_VAULT {
            let line = format!("S_{v}_{i}={}", value(v, i));
            assert!(env.lines().any(|l| l == line), "missing {line}");
        }
    }
}

#[test]
fn a_bad_item_signature_is_reported_for_each_variable_in_order() {
    let world = wide_world(&["bad-signature-detail"]);
    let marker = world.marker();
    let err = fails(world.r4exec().arg("--").args(marker.command()), 65, &[]);
    marker.assert_not_ran();
    let named: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("r4-exec: "))
        .filter_map(|l| l.split_once(" (r4://").map(|(name, _)| name))
        .collect();
    // Entries are read from the [env] table in key order.
    let mut expected: Vec<String> = (0..VAULTS)
        .flat_map(|v| (0..ITEMS_PER_VAULT).map(move |i| format!("S_{v}_{i}")))
        .collect();
    expected.sort();
    assert_eq!(named, expected, "{err}");
    assert!(
        err.lines()
            .filter(|l| l.contains(" (r4://"))
            .all(|l| l.contains("signature")),
        "{err}"
    );
    for v in 0..VAULTS {
        assert!(!err.contains(&value(v, 0)), "a value leaked: {err}");
    }
}
