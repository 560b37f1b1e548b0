//! Which instance owns which input partition, as this instance last
//! learned it from the consumer group, and where a lookup goes from there.
//!
//! [`Owners`] is a snapshot, replaced whole by the group directory
//! (`source/group.rs`) on every refresh and read by the handlers through a
//! `watch` channel: a lookup never asks the broker. It may be stale (the
//! group rebalanced since), which is why it only ever *suggests* a
//! forward: the instance that answers always checks on its own engine's
//! thread that it holds the partition, and a wrong guess costs a refresh
//! and one more try, never a wrong answer ([`route`]).

use std::sync::Arc;

/// The group member a partition is assigned to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A member that advertises its HTTP address (`http.advertised_url`).
    Advertised(Arc<str>),
    /// A member that advertises none: its answers cannot be fetched.
    Unadvertised,
    /// Two members claim the partition (a description taken mid-way
    /// through a rebalance): neither is trusted.
    Disputed,
}

/// The owners of the primary input topic's partitions, as of one
/// description of the group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owners {
    /// Per partition number, its owner; `None` when no member has it (the
    /// group is rebalancing).
    partitions: Vec<Option<Owner>>,
    /// Counts refreshes, so that a handler can wait for a newer table than
    /// the one it found stale.
    pub version: u64,
    /// Whether the group was stable when described; during a rebalance
    /// the directory describes it again soon.
    pub stable: bool,
}

impl Owners {
    /// A table of `partitions` partitions with no owner yet.
    pub fn new(partitions: u32, version: u64, stable: bool) -> Owners {
        Owners {
            partitions: vec![None; partitions as usize],
            version,
            stable,
        }
    }

    /// How many partitions the primary input topic has (0: not known yet).
    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// Records that `owner` has `partition`; a partition two members claim
    /// is [`Owner::Disputed`] (out of range: ignored).
    pub fn claim(&mut self, partition: i32, owner: Owner) {
        let Some(slot) = usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get_mut(p))
        else {
            return;
        };
        *slot = Some(match slot {
            None => owner,
            Some(_) => Owner::Disputed,
        });
    }

    /// The owner of `partition`, if known.
    pub fn owner(&self, partition: u32) -> Option<&Owner> {
        self.partitions.get(partition as usize)?.as_ref()
    }
}

/// Where a lookup goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Ask this instance's engine (which checks that it holds the
    /// partition).
    Local,
    /// Forward the request to the owner's advertised address.
    Forward(Arc<str>),
}

/// Where a lookup of a customer on `partition` goes: to the owner the
/// table names when that is another instance, else here. A request that
/// was forwarded already (`forwarded`, the loop guard) is always answered
/// here, so a request is forwarded at most once whatever the tables say.
/// `me` is this instance's advertised address, if it has one.
pub fn route(owners: &Owners, me: Option<&str>, partition: u32, forwarded: bool) -> Route {
    if forwarded {
        return Route::Local;
    }
    match owners.owner(partition) {
        Some(Owner::Advertised(url)) if Some(&**url) != me => Route::Forward(url.clone()),
        _ => Route::Local,
    }
}

/// Why nobody can answer for `partition` according to `owners`, once this
/// instance found it does not hold it: the error code of the 503.
pub fn unavailable(owners: &Owners, me: Option<&str>, partition: u32) -> &'static str {
    match owners.owner(partition) {
        Some(Owner::Unadvertised) => "owner_not_advertised",
        Some(Owner::Advertised(url)) if Some(&**url) != me => "owner_unreachable",
        _ => "owner_unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Owners {
        let mut owners = Owners::new(4, 1, true);
        owners.claim(0, Owner::Advertised("http://a:1".into()));
        owners.claim(1, Owner::Advertised("http://b:1".into()));
        owners.claim(2, Owner::Unadvertised);
        owners
    }

    #[test]
    fn another_owner_is_forwarded_to_and_this_one_answers_itself() {
        let owners = table();
        let me = Some("http://a:1");
        assert_eq!(route(&owners, me, 0, false), Route::Local);
        assert_eq!(
            route(&owners, me, 1, false),
            Route::Forward("http://b:1".into())
        );
        assert_eq!(
            route(&owners, None, 0, false),
            Route::Forward("http://a:1".into())
        );
    }

    #[test]
    fn unknown_and_unadvertised_owners_are_asked_here_first() {
        let owners = table();
        let me = Some("http://a:1");
        assert_eq!(route(&owners, me, 2, false), Route::Local, "unadvertised");
        assert_eq!(route(&owners, me, 3, false), Route::Local, "unassigned");
        assert_eq!(route(&owners, me, 9, false), Route::Local, "out of range");
        assert_eq!(route(&Owners::default(), me, 0, false), Route::Local);
    }

    #[test]
    fn a_forwarded_request_is_never_forwarded_again() {
        let owners = table();
        assert_eq!(route(&owners, Some("http://a:1"), 1, true), Route::Local);
        assert_eq!(route(&owners, None, 0, true), Route::Local);
    }

    #[test]
    fn the_503_says_why_nobody_answers() {
        let owners = table();
        let me = Some("http://a:1");
        assert_eq!(
            unavailable(&owners, me, 0),
            "owner_unknown",
            "stale: says me"
        );
        assert_eq!(unavailable(&owners, me, 1), "owner_unreachable");
        assert_eq!(unavailable(&owners, me, 2), "owner_not_advertised");
        assert_eq!(unavailable(&owners, me, 3), "owner_unknown");
    }

    #[test]
    fn a_partition_claimed_twice_has_no_usable_owner() {
        let mut owners = table();
        owners.claim(1, Owner::Advertised("http://c:1".into()));
        owners.claim(1, Owner::Advertised("http://d:1".into()));
        assert_eq!(owners.owner(1), Some(&Owner::Disputed));
        assert_eq!(route(&owners, None, 1, false), Route::Local);
        assert_eq!(unavailable(&owners, None, 1), "owner_unknown");
        owners.claim(-1, Owner::Unadvertised);
        owners.claim(7, Owner::Unadvertised);
        assert_eq!(owners.partition_count(), 4);
    }
}
