//! `GET /vault/sync` (contract §6.3): everything an agent can read in one
//! answer, in full or as a delta since an opaque cursor. A cursor is
//! `b64u("r4dev.<epoch>.<seq>")`: the world's random per-start epoch and its
//! change sequence, so a cursor from another run (or from before a change of
//! faults) is unknown and answered in full.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64U;
use base64::Engine;
use r4_contract::wire::{Removed, SyncResponse, SyncVault};

use crate::views::Ctx;
use crate::world::World;

fn make_cursor(w: &World) -> String {
    B64U.encode(format!("r4dev.{}.{}", w.epoch, w.seq))
}

/// The change sequence a cursor stands for, if it is from this world and
/// still valid.
fn parse_cursor(w: &World, cursor: &str) -> Option<u64> {
    let text = String::from_utf8(B64U.decode(cursor.trim()).ok()?).ok()?;
    let mut parts = text.split('.');
    let (Some("r4dev"), Some(epoch), Some(seq), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let seq: u64 = seq.parse().ok()?;
    (epoch == w.epoch && seq <= w.seq && seq >= w.reset_seq).then_some(seq)
}

/// Builds the sync answer for `ctx.agent`.
pub(crate) fn sync(ctx: &mut Ctx<'_>, cursor: Option<&str>) -> SyncResponse {
    let w = ctx.w;
    let agent = ctx.agent;
    let since = cursor.and_then(|c| parse_cursor(w, c));
    let mut vaults = Vec::new();
    let mut removed = Removed::default();
    for v in ctx.visible_vaults() {
        let all_items = match since {
            None => true,
            Some(c) => {
                let newly = !w.was_visible(&agent.id, &v.id, c);
                let changed = newly
                    || v.changed_seq > c
                    || v.dir_seq > c
                    || v.wrapped.get(&agent.id).is_some_and(|wk| wk.seq > c)
                    || v.items.iter().any(|i| i.changed_seq > c);
                if !changed {
                    continue;
                }
                if !newly {
                    removed.item_ids.extend(
                        v.items
                            .iter()
                            .filter(|i| i.archived_seq.is_some_and(|s| s > c))
                            .map(|i| i.id.clone()),
                    );
                }
                newly
            }
        };
        let items = v
            .live_items()
            .filter(|i| all_items || since.is_some_and(|c| i.changed_seq > c))
            .map(|i| ctx.item_detail(v, i))
            .collect();
        let (_, checkpoint) = ctx.summary(v);
        vaults.push(SyncVault {
            vault: ctx.vault_entry(v, false),
            wrapped_key: ctx.wrapped_key(v),
            signers: ctx.directory(v),
            checkpoint,
            items,
        });
    }
    if let Some(c) = since {
        removed.vault_ids = w
            .vaults
            .iter()
            .filter(|v| w.was_visible(&agent.id, &v.id, c) && !w.is_visible(agent, v))
            .map(|v| v.id.clone())
            .collect();
    }
    SyncResponse {
        cursor: make_cursor(w),
        mode: if since.is_some() { "delta" } else { "full" }.into(),
        vaults,
        removed,
    }
}
