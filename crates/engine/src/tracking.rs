//! Client-side caching (`CLIENT TRACKING`): which clients may hold which keys in a local
//! cache, and telling them when those keys change, as Redis 7.0's `tracking.c` does.
//!
//! * **Default mode** (and OPTIN/OPTOUT): the keys a tracking client reads with a read-only
//!   command are remembered for it. The first change to such a key (a write, an expiry, an
//!   eviction) sends that client one invalidation and forgets the key for it: it has to read
//!   the key again to hear of the next change. The table is one namespace for every
//!   database, as in Redis, and bounded by `tracking-table-max-keys`: past it, keys are
//!   forgotten with an invalidation, as if they had changed.
//! * **BCAST**: the client names key prefixes instead, and hears of every changed key under
//!   them. Changes are gathered while a command runs and sent when it ends (Redis sends them
//!   once per event-loop turn), one message per prefix, keys in byte order.
//! * FLUSHDB/FLUSHALL send every tracking client a null invalidation ("everything").
//!
//! Messages go through each connection's delivery function, like pub/sub messages. Whether
//! and how one is framed depends on the protocol of the connection that receives it (a RESP3
//! push, or a `message` on `__redis__:invalidate` for a RESP2 subscriber it was redirected
//! to), which the receiving connection applies with [`frame_for`].
//!
//! With no client tracking, every hook on the write path returns after one atomic load.
//! Unlike Redis, which drops a client's entries lazily, a client's entries are dropped at
//! once when it turns tracking off or disconnects, so nothing is kept for nobody.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use staykv_resp::Reply;

use crate::pubsub::{Deliver, Deliveries};
use crate::value::{HashMap, HashSet};

/// The pub/sub channel RESP2 clients subscribe to when invalidations are redirected to them.
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// `tracking-table-max-keys` by default, as in Redis.
pub const DEFAULT_MAX_KEYS: u64 = 1_000_000;

/// How a tracking client's reads are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every key read.
    Default,
    /// Only keys read by the command after `CLIENT CACHING yes`.
    OptIn,
    /// Every key read except by the command after `CLIENT CACHING no`.
    OptOut,
    /// None: changes under the client's prefixes are broadcast to it.
    Broadcast,
}

impl Mode {
    /// Whether a read is remembered, given whether `CLIENT CACHING` was sent for it.
    pub fn remembers(self, caching_given: bool) -> bool {
        match self {
            Mode::Default => true,
            Mode::OptIn => caching_given,
            Mode::OptOut => !caching_given,
            Mode::Broadcast => false,
        }
    }
}

/// What `CLIENT TRACKING ON` asked for, once checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub noloop: bool,
    /// Client id the messages go to; 0 for the client itself.
    pub redirect: u64,
    /// BCAST prefixes (none given means the empty prefix: every key).
    pub prefixes: Vec<Bytes>,
}

/// One tracking client.
struct Tracker {
    mode: Mode,
    noloop: bool,
    redirect: u64,
    /// The redirect target went away (`tracking-redir-broken` was sent).
    broken_redirect: bool,
    /// Its own connection's delivery (`None`: a front end that cannot take messages).
    deliver: Option<Deliver>,
    /// The keys remembered for it, to drop them when it stops tracking.
    keys: HashSet<Bytes>,
    prefixes: BTreeSet<Bytes>,
}

/// What `CLIENT TRACKINGINFO` reports of a tracking client.
#[derive(Debug, Clone)]
pub struct Info {
    pub mode: Mode,
    pub noloop: bool,
    pub redirect: u64,
    pub broken_redirect: bool,
    pub prefixes: Vec<Bytes>,
}

/// The tables, under one lock.
#[derive(Default)]
struct Table {
    trackers: HashMap<u64, Tracker>,
    /// Key → the clients that may cache it, in the order they read it.
    keys: HashMap<Bytes, Vec<u64>>,
    /// (client, key) pairs in `keys`: INFO's `tracking_total_items`.
    items: usize,
    /// BCAST prefix → its clients.
    prefixes: BTreeMap<Bytes, BTreeSet<u64>>,
    /// Keys changed since the last broadcast, per prefix, each with the client that last
    /// changed it (NOLOOP clients are not told of their own changes).
    changed: BTreeMap<Bytes, BTreeMap<Bytes, Option<u64>>>,
    /// Rounds in a row that eviction left the table over its limit (each tries harder).
    over_limit_rounds: usize,
}

/// The tracking registry of the engine.
pub struct Tracking {
    /// Clients with tracking on: 0 lets every hook return at once.
    clients: AtomicUsize,
    /// Changed keys wait to be broadcast.
    pending: AtomicBool,
    /// The key table may have outgrown `max_keys`.
    over_limit: AtomicBool,
    max_keys: AtomicU64,
    table: Mutex<Table>,
    /// Every connection that can take messages, by client id: REDIRECT targets.
    peers: RwLock<HashMap<u64, Deliver>>,
    /// Messages for a connection to deliver once its reply is written (see [`Outbox`]).
    held: Mutex<Vec<(u64, Deliver, Reply)>>,
    has_held: AtomicBool,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            clients: AtomicUsize::new(0),
            pending: AtomicBool::new(false),
            over_limit: AtomicBool::new(false),
            max_keys: AtomicU64::new(DEFAULT_MAX_KEYS),
            table: Mutex::default(),
            peers: RwLock::default(),
            held: Mutex::default(),
            has_held: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracking({} clients)", self.clients.load(Ordering::Relaxed))
    }
}

/// Who caused a key change, for NOLOOP: `current` is the client whose command runs (the
/// default mode spares it), `modifier` the one Redis credits with the change in BCAST mode
/// (none for expiry and eviction).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cause {
    pub current: Option<u64>,
    pub modifier: Option<u64>,
}

impl Cause {
    /// A write by `client`'s command, or by a script it runs (which Redis 7.0 credits to
    /// the script's own client, so a BCAST NOLOOP client hears of its scripts' writes).
    pub fn write_by(client: u64, in_script: bool) -> Cause {
        Cause { current: Some(client), modifier: (!in_script).then_some(client) }
    }

    /// An expiry found while `client`'s command runs.
    pub fn expiry_during(client: u64) -> Cause {
        Cause { current: Some(client), modifier: None }
    }
}

impl Tracking {
    /// Whether any client tracks: the one check the write path pays.
    pub fn is_active(&self) -> bool {
        self.clients.load(Ordering::Acquire) != 0
    }

    /// A connection that can take messages (a possible REDIRECT target).
    pub fn add_peer(&self, client: u64, deliver: Deliver) {
        self.peers.write().insert(client, deliver);
    }

    pub fn has_peer(&self, client: u64) -> bool {
        self.peers.read().contains_key(&client)
    }

    /// A connection went away: it stops being a redirect target (whoever redirects to it
    /// hears `tracking-redir-broken` at the next invalidation). Its own tracking is ended by
    /// [`Tracking::disable`].
    pub fn forget_peer(&self, client: u64) {
        self.peers.write().remove(&client);
        if self.has_held.load(Ordering::Acquire) {
            // A connection that closed between its command and its reply.
            self.held.lock().retain(|(to, _, _)| *to != client);
        }
    }

    /// `tracking-table-max-keys` (0: no limit).
    pub fn max_keys(&self) -> u64 {
        self.max_keys.load(Ordering::Relaxed)
    }

    /// Takes effect before the next command, as in Redis.
    pub fn set_max_keys(&self, max: u64) {
        self.max_keys.store(max, Ordering::Relaxed);
        self.over_limit.store(true, Ordering::Release);
    }

    /// Turn tracking on for `client` (or change its settings while on), its messages going
    /// to `deliver` unless redirected. BCAST prefixes add to those it has.
    pub fn enable(&self, client: u64, deliver: Option<Deliver>, settings: Settings) {
        let mut table = self.table.lock();
        let table = &mut *table;
        let tracker = table.trackers.entry(client).or_insert_with(|| {
            self.clients.fetch_add(1, Ordering::AcqRel);
            Tracker {
                mode: settings.mode,
                noloop: false,
                redirect: 0,
                broken_redirect: false,
                deliver,
                keys: HashSet::default(),
                prefixes: BTreeSet::new(),
            }
        });
        tracker.mode = settings.mode;
        tracker.noloop = settings.noloop;
        tracker.redirect = settings.redirect;
        tracker.broken_redirect = false;
        if settings.mode == Mode::Broadcast {
            let prefixes = if settings.prefixes.is_empty() { vec![Bytes::new()] } else { settings.prefixes };
            for prefix in prefixes {
                table.prefixes.entry(prefix.clone()).or_default().insert(client);
                tracker.prefixes.insert(prefix);
            }
        }
    }

    /// Turn tracking off for `client`, dropping what was remembered for it.
    pub fn disable(&self, client: u64) {
        if !self.is_active() {
            return;
        }
        let mut table = self.table.lock();
        let Some(tracker) = table.trackers.remove(&client) else { return };
        self.clients.fetch_sub(1, Ordering::AcqRel);
        for key in &tracker.keys {
            table.forget_one(key, client);
        }
        for prefix in &tracker.prefixes {
            let emptied = table.prefixes.get_mut(prefix).is_some_and(|clients| {
                clients.remove(&client);
                clients.is_empty()
            });
            if emptied {
                table.prefixes.remove(prefix);
                table.changed.remove(prefix);
            }
        }
    }

    /// `CLIENT TRACKINGINFO` of a tracking client; `None` if it does not track.
    pub fn info(&self, client: u64) -> Option<Info> {
        let table = self.table.lock();
        table.trackers.get(&client).map(|t| Info {
            mode: t.mode,
            noloop: t.noloop,
            redirect: t.redirect,
            broken_redirect: t.broken_redirect,
            prefixes: t.prefixes.iter().cloned().collect(),
        })
    }

    /// The BCAST prefixes `client` has now (for the overlap check of a new `CLIENT TRACKING`).
    pub fn prefixes_of(&self, client: u64) -> Vec<Bytes> {
        self.info(client).map(|info| info.prefixes).unwrap_or_default()
    }

    /// CLIENT LIST's tracking flags (`t`, `R`, `B`) and `redir=` value of a client.
    pub fn list_fields(&self, client: u64) -> (String, i64) {
        if !self.is_active() {
            return (String::new(), -1);
        }
        match self.info(client) {
            None => (String::new(), -1),
            Some(info) => {
                let mut flags = String::from("t");
                if info.broken_redirect {
                    flags.push('R');
                }
                if info.mode == Mode::Broadcast {
                    flags.push('B');
                }
                (flags, i64::try_from(info.redirect).unwrap_or(i64::MAX))
            }
        }
    }

    /// INFO: clients tracking, keys in the table, (client, key) pairs, BCAST prefixes.
    pub fn totals(&self) -> (usize, usize, usize, usize) {
        let table = self.table.lock();
        (table.trackers.len(), table.keys.len(), table.items, table.prefixes.len())
    }

    /// Remember that `client` read `keys` (it may cache them now).
    pub fn remember<'k>(&self, client: u64, keys: impl Iterator<Item = &'k Bytes>) {
        let mut table = self.table.lock();
        let table = &mut *table;
        let Some(tracker) = table.trackers.get_mut(&client) else { return };
        for key in keys {
            // Copied (once, then shared by both tables): the argument is a slice of the whole
            // request, which it would keep alive.
            let owned = match table.keys.get_key_value_mut(&key[..]) {
                Some((_, readers)) if readers.contains(&client) => continue,
                Some((owned, readers)) => {
                    readers.push(client);
                    owned.clone()
                }
                None => {
                    let owned = Bytes::copy_from_slice(key);
                    table.keys.insert(owned.clone(), vec![client]);
                    owned
                }
            };
            table.items += 1;
            tracker.keys.insert(owned);
        }
        let max = usize::try_from(self.max_keys()).unwrap_or(usize::MAX);
        if max != 0 && table.keys.len() > max {
            self.over_limit.store(true, Ordering::Release);
        }
    }

    /// `key` changed: tell the clients that may cache it at once, and note it for broadcast.
    pub fn invalidate(&self, key: &[u8], cause: Cause) {
        self.invalidations(key, cause).deliver();
    }

    /// [`Tracking::invalidate`], the messages for other connections left to the caller to
    /// deliver (a command's, once its write is in the log).
    pub fn invalidations(&self, key: &[u8], cause: Cause) -> Deliveries {
        if !self.is_active() {
            return Deliveries::new();
        }
        let mut table = self.table.lock();
        if table.note_for_broadcast(key, cause.modifier) {
            self.pending.store(true, Ordering::Release);
        }
        let peers = self.peers.read();
        let mut outbox = Outbox::new(&peers, cause.current);
        table.invalidate(&mut outbox, key);
        self.hold(outbox)
    }

    /// A database was emptied, by `current`'s command: every tracking client is told to drop
    /// everything, and the table starts over (Redis does so for FLUSHDB too: the table has
    /// no databases). The messages for other connections are the caller's to deliver (once
    /// the command's write is in the log).
    pub fn flush_invalidations(&self, current: u64) -> Deliveries {
        if !self.is_active() {
            return Deliveries::new();
        }
        let mut table = self.table.lock();
        table.keys.clear();
        table.items = 0;
        let mut ids: Vec<u64> = table.trackers.keys().copied().collect();
        ids.sort_unstable();
        let peers = self.peers.read();
        let mut outbox = Outbox::new(&peers, Some(current));
        for id in ids {
            if let Some(tracker) = table.trackers.get_mut(&id) {
                tracker.keys.clear();
                outbox.send(id, tracker, Reply::Nil, id == current);
            }
        }
        self.hold(outbox)
    }

    /// Send the BCAST clients the keys changed under their prefixes since the last call:
    /// after each command (`current`'s, if any), where Redis does it once per event-loop
    /// turn, after the replies of that turn.
    pub fn broadcast(&self, current: Option<u64>) {
        self.broadcasts(current).deliver();
    }

    /// [`Tracking::broadcast`]'s messages, made under the table's lock and delivered after it.
    fn broadcasts(&self, current: Option<u64>) -> Deliveries {
        // Loaded first: every command of every client passes here while anyone tracks.
        if !self.pending.load(Ordering::Acquire) || !self.pending.swap(false, Ordering::AcqRel) {
            return Deliveries::new();
        }
        let mut table = self.table.lock();
        let changed = std::mem::take(&mut table.changed);
        let peers = self.peers.read();
        let mut outbox = Outbox::new(&peers, current);
        for (prefix, keys) in changed {
            let clients: Vec<u64> =
                table.prefixes.get(&prefix).map(|c| c.iter().copied().collect()).unwrap_or_default();
            let all = || Reply::Array(keys.keys().cloned().map(Reply::Bulk).collect());
            for id in clients {
                let Some(tracker) = table.trackers.get_mut(&id) else { continue };
                let payload = if tracker.noloop {
                    let others: Vec<Reply> = keys
                        .iter()
                        .filter(|(_, by)| **by != Some(id))
                        .map(|(key, _)| Reply::Bulk(key.clone()))
                        .collect();
                    if others.is_empty() {
                        continue;
                    }
                    Reply::Array(others)
                } else {
                    all()
                };
                outbox.send(id, tracker, payload, true);
            }
        }
        self.hold(outbox)
    }

    /// Keep what `outbox` holds back for its connection until that connection's reply is
    /// written ([`Tracking::deliver_held`]); returns the messages for the other connections,
    /// to deliver once the tables are let go.
    fn hold(&self, outbox: Outbox) -> Deliveries {
        if !outbox.held.is_empty() {
            self.held.lock().extend(outbox.held);
            self.has_held.store(true, Ordering::Release);
        }
        outbox.out
    }

    /// After `client`'s reply is written: deliver the messages Redis sends it after the reply
    /// (its own invalidations during its own command, flushes, broadcasts).
    pub fn deliver_held(&self, client: u64) {
        if !self.has_held.load(Ordering::Acquire) {
            return;
        }
        let mine: Vec<(Deliver, Reply)> = {
            let mut held = self.held.lock();
            let (mine, others): (Vec<_>, Vec<_>) = held.drain(..).partition(|(to, _, _)| *to == client);
            self.has_held.store(!others.is_empty(), Ordering::Release);
            *held = others;
            mine.into_iter().map(|(_, deliver, message)| (deliver, message)).collect()
        };
        for (deliver, message) in mine {
            deliver(message);
        }
    }

    /// Before a command: past `tracking-table-max-keys`, forget keys (telling their clients,
    /// as if the keys had changed) until under it again, with an effort that grows each
    /// time it falls short, as Redis's `trackingLimitUsedSlots`.
    pub fn enforce_limit(&self) {
        self.limit_invalidations().deliver();
    }

    /// [`Tracking::enforce_limit`]'s messages, made under the table's lock and delivered
    /// after it.
    fn limit_invalidations(&self) -> Deliveries {
        if !self.over_limit.load(Ordering::Acquire) || !self.over_limit.swap(false, Ordering::AcqRel) {
            return Deliveries::new();
        }
        let max = usize::try_from(self.max_keys()).unwrap_or(usize::MAX);
        let mut table = self.table.lock();
        if max == 0 || table.keys.len() <= max {
            table.over_limit_rounds = 0;
            return Deliveries::new();
        }
        let peers = self.peers.read();
        // Sent at once: Redis does this before the command, not while it runs.
        let mut outbox = Outbox::new(&peers, None);
        let effort = 100 * (table.over_limit_rounds + 1);
        for _ in 0..effort {
            let Some(key) = table.keys.keys().next().cloned() else { break };
            table.invalidate(&mut outbox, &key);
            if table.keys.len() <= max {
                break;
            }
        }
        if table.keys.len() <= max {
            table.over_limit_rounds = 0;
        } else {
            table.over_limit_rounds += 1;
            self.over_limit.store(true, Ordering::Release);
        }
        self.hold(outbox)
    }
}

/// The BCAST prefixes `key` starts with. Every write looks, so with more prefixes than
/// the key has bytes, the key's own prefixes are looked up instead of every prefix tried
/// (Redis tries every prefix: 100,000 registered prefixes cost each write as much).
fn matching_prefixes<'a, V>(prefixes: &'a BTreeMap<Bytes, V>, key: &'a [u8]) -> impl Iterator<Item = &'a Bytes> + 'a {
    let scan = prefixes.len() <= key.len();
    let tried = scan.then(|| prefixes.keys()).into_iter().flatten().filter(move |p| key.starts_with(p));
    let looked_up = (!scan)
        .then_some(0..=key.len())
        .into_iter()
        .flatten()
        .filter_map(move |len| key.get(..len).and_then(|own| prefixes.get_key_value(own)).map(|(p, _)| p));
    tried.chain(looked_up)
}

impl Table {
    /// Drop `client` from the readers of `key`.
    fn forget_one(&mut self, key: &[u8], client: u64) {
        let Some(readers) = self.keys.get_mut(key) else { return };
        let before = readers.len();
        readers.retain(|&id| id != client);
        self.items -= before - readers.len();
        if readers.is_empty() {
            self.keys.remove(key);
        }
    }

    /// Note `key` under every BCAST prefix it matches; whether any did.
    fn note_for_broadcast(&mut self, key: &[u8], modifier: Option<u64>) -> bool {
        let mut noted = false;
        for prefix in matching_prefixes(&self.prefixes, key) {
            self.changed.entry(prefix.clone()).or_default().insert(Bytes::copy_from_slice(key), modifier);
            noted = true;
        }
        noted
    }

    /// Tell the readers of `key` it changed (NOLOOP readers not of their own changes) and
    /// forget it for all of them.
    fn invalidate(&mut self, outbox: &mut Outbox, key: &[u8]) {
        let Some(readers) = self.keys.remove(key) else { return };
        self.items -= readers.len();
        for id in readers {
            let Some(tracker) = self.trackers.get_mut(&id) else { continue };
            tracker.keys.remove(key);
            let own_command = outbox.current == Some(id);
            if tracker.noloop && own_command {
                continue;
            }
            let payload = Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(key))]);
            outbox.send(id, tracker, payload, own_command);
        }
    }
}

/// Where the messages of one event go: to the connections at once, except those Redis
/// writes after the reply of the command running (`current`'s) and that land on that same
/// connection, which are held (a message to it sent at once goes out before its reply, as
/// in Redis, where it is in the output buffer before the reply is).
struct Outbox<'p> {
    peers: &'p HashMap<u64, Deliver>,
    current: Option<u64>,
    /// (connection, its delivery, message).
    held: Vec<(u64, Deliver, Reply)>,
    /// The rest, to deliver once the tables are let go.
    out: Deliveries,
}

impl<'p> Outbox<'p> {
    fn new(peers: &'p HashMap<u64, Deliver>, current: Option<u64>) -> Outbox<'p> {
        Outbox { peers, current, held: Vec::new(), out: Deliveries::new() }
    }

    /// Send `payload` for `tracker` (client `id`); `after_reply`: Redis sends it after the
    /// current command's reply.
    fn send(&mut self, id: u64, tracker: &mut Tracker, payload: Reply, after_reply: bool) {
        let Some((to, deliver, message)) = tracker.route(id, self.peers, payload) else { return };
        if after_reply && self.current == Some(to) {
            self.held.push((to, deliver, message));
        } else {
            self.out.push(deliver, message);
        }
    }
}

/// The first element of a queued tracking message: which of Redis's frames it becomes.
const FOR_SELF: &str = "invalidate";
const REDIRECTED: &str = "\0invalidate-redirected";
const REDIRECT_BROKEN: &str = "tracking-redir-broken";

impl Tracker {
    /// Where `payload` (the keys, or null for "all") for this client (`id`) goes, and as
    /// what: its own connection, or the redirect target, or, with that target gone, its own
    /// connection with `tracking-redir-broken`. `None`: it has no connection to send to.
    fn route(&mut self, id: u64, peers: &HashMap<u64, Deliver>, payload: Reply) -> Option<(u64, Deliver, Reply)> {
        if self.redirect == 0 {
            let message = Reply::Push(vec![Reply::bulk_str(FOR_SELF), payload]);
            return self.deliver.clone().map(|deliver| (id, deliver, message));
        }
        if let Some(deliver) = peers.get(&self.redirect) {
            return Some((self.redirect, deliver.clone(), Reply::Push(vec![Reply::bulk_str(REDIRECTED), payload])));
        }
        self.broken_redirect = true;
        let redirect = i64::try_from(self.redirect).unwrap_or(i64::MAX);
        let message = Reply::Push(vec![Reply::bulk_str(REDIRECT_BROKEN), Reply::Int(redirect)]);
        self.deliver.clone().map(|deliver| (id, deliver, message))
    }
}

/// The frame a connection writes for a queued message, by its protocol and whether it is
/// subscribed (RESP2 pub/sub mode): tracking messages become what Redis sends (RESP3: a
/// push; RESP2: a `message` on [`INVALIDATE_CHANNEL`] if redirected to a subscriber, else
/// nothing); every other message is written as it is.
pub fn frame_for(message: Reply, resp3: bool, subscribed: bool) -> Option<Reply> {
    let Reply::Push(mut items) = message else { return Some(message) };
    let kind = match items.first() {
        Some(Reply::Bulk(kind)) if [FOR_SELF, REDIRECTED, REDIRECT_BROKEN].iter().any(|k| k.as_bytes() == kind) => {
            kind.clone()
        }
        _ => return Some(Reply::Push(items)),
    };
    if resp3 {
        if kind == REDIRECTED.as_bytes() {
            if let Some(first) = items.first_mut() {
                *first = Reply::bulk_str(FOR_SELF);
            }
        }
        return Some(Reply::Push(items));
    }
    if kind != REDIRECTED.as_bytes() || !subscribed {
        return None;
    }
    let payload = items.pop()?;
    Some(Reply::Push(vec![Reply::bulk_str("message"), Reply::bulk_str(INVALIDATE_CHANNEL), payload]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;

    /// A delivery function that keeps what it gets.
    fn inbox() -> (Deliver, Arc<Mutex<Vec<Reply>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        (Arc::new(move |message| keep.lock().push(message)), got)
    }

    fn settings(mode: Mode) -> Settings {
        Settings { mode, noloop: false, redirect: 0, prefixes: Vec::new() }
    }

    #[test]
    fn a_key_matches_the_same_prefixes_whether_they_are_scanned_or_looked_up() {
        let few: BTreeMap<Bytes, ()> =
            ["", "u", "user:", "user:1", "x"].into_iter().map(|p| (Bytes::from(p), ())).collect();
        let mut many = few.clone();
        many.extend((0..100).map(|i| (Bytes::from(format!("other{i}")), ())));
        for key in ["user:12", "user:", "u", "", "x:y", "zzz", "user:1"] {
            let expected: Vec<&Bytes> = few.keys().filter(|p| key.as_bytes().starts_with(p)).collect();
            // `few` has fewer prefixes than most keys have bytes: scanned; `many`: looked up.
            assert_eq!(matching_prefixes(&few, key.as_bytes()).collect::<Vec<_>>(), expected, "{key}");
            assert_eq!(matching_prefixes(&many, key.as_bytes()).collect::<Vec<_>>(), expected, "{key}");
        }
    }

    fn keys(reply: &Reply) -> Vec<Bytes> {
        match frame_for(reply.clone(), true, false) {
            Some(Reply::Push(items)) => match items.get(1) {
                Some(Reply::Array(keys)) => {
                    keys.iter().filter_map(|k| if let Reply::Bulk(k) = k { Some(k.clone()) } else { None }).collect()
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    #[test]
    fn an_invalidation_is_sent_once_and_forgets_the_key() {
        let tracking = Tracking::default();
        let (deliver, got) = inbox();
        tracking.enable(1, Some(deliver), settings(Mode::Default));
        let key = Bytes::from_static(b"k");
        tracking.remember(1, [&key].into_iter());
        assert_eq!(tracking.totals(), (1, 1, 1, 0));
        tracking.invalidate(b"k", Cause::write_by(2, false));
        tracking.invalidate(b"k", Cause::write_by(2, false));
        let got = got.lock();
        assert_eq!(got.len(), 1);
        assert_eq!(keys(got.first().unwrap()), vec![key]);
        assert_eq!(tracking.totals(), (1, 0, 0, 0));
    }

    #[test]
    fn turning_off_drops_every_entry() {
        let tracking = Tracking::default();
        let (deliver, _) = inbox();
        tracking.enable(1, Some(deliver.clone()), settings(Mode::Default));
        tracking.enable(
            2,
            Some(deliver),
            Settings { prefixes: vec![Bytes::from_static(b"p")], ..settings(Mode::Broadcast) },
        );
        let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
        tracking.remember(1, [&a, &b].into_iter());
        tracking.disable(1);
        tracking.disable(2);
        assert_eq!(tracking.totals(), (0, 0, 0, 0));
        assert!(!tracking.is_active());
    }

    #[test]
    fn noloop_spares_the_client_its_own_changes() {
        let tracking = Tracking::default();
        let (deliver, got) = inbox();
        tracking.enable(1, Some(deliver), Settings { noloop: true, ..settings(Mode::Broadcast) });
        tracking.invalidate(b"mine", Cause::write_by(1, false));
        tracking.invalidate(b"theirs", Cause::write_by(2, false));
        tracking.broadcast(Some(3));
        let got = got.lock();
        assert_eq!(got.len(), 1);
        assert_eq!(keys(got.first().unwrap()), vec![Bytes::from_static(b"theirs")]);
    }

    #[test]
    fn past_the_limit_keys_are_forgotten_with_an_invalidation() {
        let tracking = Tracking::default();
        tracking.set_max_keys(2);
        let (deliver, got) = inbox();
        tracking.enable(1, Some(deliver), settings(Mode::Default));
        let read: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("k{i}"))).collect();
        tracking.remember(1, read.iter());
        tracking.enforce_limit();
        assert_eq!(tracking.totals().1, 2);
        assert_eq!(got.lock().len(), 3);
    }

    #[test]
    fn a_gone_redirect_target_is_reported_to_resp3_only() {
        let tracking = Tracking::default();
        let (deliver, got) = inbox();
        tracking.enable(1, Some(deliver), Settings { redirect: 9, ..settings(Mode::Default) });
        tracking.remember(1, [&Bytes::from_static(b"k")].into_iter());
        tracking.invalidate(b"k", Cause::default());
        assert!(tracking.info(1).unwrap().broken_redirect);
        assert_eq!(tracking.list_fields(1), ("tR".to_string(), 9));
        let message = got.lock().first().unwrap().clone();
        assert!(frame_for(message.clone(), false, true).is_none());
        let broken = Reply::Push(vec![Reply::bulk_str(REDIRECT_BROKEN), Reply::Int(9)]);
        assert_eq!(frame_for(message, true, false), Some(broken));
    }

    /// An engine and a RESP3 tracking client whose messages are kept.
    struct Setup {
        engine: crate::Engine,
        tracker: crate::Client,
        got: Arc<Mutex<Vec<Reply>>>,
    }

    impl Setup {
        fn new(tracking: &str) -> Setup {
            let engine = crate::Engine::new(crate::EngineOptions::default());
            let (deliver, got) = inbox();
            let mut tracker = crate::Client::new(1, true);
            tracker.protocol = staykv_resp::Protocol::Resp3;
            tracker.deliver = Some(crate::pubsub::ClientDeliver(deliver.clone()));
            engine.tracking.add_peer(1, deliver);
            let mut setup = Setup { engine, tracker, got };
            assert_eq!(setup.run_tracker(tracking), Reply::Ok);
            setup
        }

        fn run_tracker(&mut self, line: &str) -> Reply {
            let reply = self.engine.run_line(&mut self.tracker, 1, &crate::exec::NoJournal, line).reply;
            self.engine.tracking.deliver_held(1);
            reply
        }

        fn run_other(&self, line: &str) -> Reply {
            let mut other = crate::Client::new(2, true);
            self.engine.run_line(&mut other, 1, &crate::exec::NoJournal, line).reply
        }

        /// The keys of each invalidation received since the last call.
        fn invalidated(&self) -> Vec<Vec<Bytes>> {
            self.got.lock().drain(..).map(|message| keys(&message)).collect()
        }
    }

    fn bytes(keys: &[&'static str]) -> Vec<Bytes> {
        keys.iter().map(|k| Bytes::from_static(k.as_bytes())).collect()
    }

    #[test]
    fn reads_are_remembered_and_writes_invalidate_through_the_engine() {
        let mut setup = Setup::new("CLIENT TRACKING on");
        setup.run_tracker("MGET a b");
        setup.run_tracker("SET c 1");
        setup.run_other("SET a 1");
        setup.run_other("MSET b 1 c 1");
        assert_eq!(setup.invalidated(), vec![bytes(&["a"]), bytes(&["b"])]);
        setup.run_tracker("MULTI");
        setup.run_tracker("GET x");
        setup.run_tracker("EXEC");
        setup.run_tracker("EVAL return(redis.call('GET','y')) 1 z");
        setup.run_other("MSET x 1 y 1 z 1");
        // In a script Redis 7.0 remembers the script's keys, not those its commands read.
        assert_eq!(setup.invalidated(), vec![bytes(&["x"]), bytes(&["z"])]);
        setup.run_other("FLUSHALL");
        assert_eq!(
            setup.got.lock().drain(..).collect::<Vec<_>>(),
            vec![Reply::Push(vec![Reply::bulk_str(FOR_SELF), Reply::Nil])]
        );
    }

    #[test]
    fn optin_remembers_only_after_client_caching_yes() {
        let mut setup = Setup::new("CLIENT TRACKING on OPTIN");
        setup.run_tracker("GET a");
        setup.run_tracker("CLIENT CACHING yes");
        setup.run_tracker("GET b");
        setup.run_tracker("GET c");
        setup.run_other("MSET a 1 b 1 c 1");
        assert_eq!(setup.invalidated(), vec![bytes(&["b"])]);
        setup.run_tracker("CLIENT TRACKING off");
        assert_eq!(setup.engine.tracking.totals(), (0, 0, 0, 0));
    }

    #[test]
    fn broadcast_sends_one_sorted_message_per_prefix_after_the_command() {
        let mut setup = Setup::new("CLIENT TRACKING on BCAST PREFIX b PREFIX a");
        setup.run_other("MSET b1 1 a2 1 a1 1 z 1");
        assert_eq!(setup.invalidated(), vec![bytes(&["a1", "a2"]), bytes(&["b1"])]);
        let info = setup.run_tracker("CLIENT TRACKINGINFO");
        let Reply::Map(fields) = info else { return assert_eq!(info, Reply::Nil) };
        assert_eq!(
            fields.get(2).map(|(_, v)| v.clone()),
            Some(Reply::Array(vec![Reply::bulk_str("a"), Reply::bulk_str("b")]))
        );
    }

    #[test]
    fn a_disconnected_tracker_leaves_nothing_behind() {
        let mut setup = Setup::new("CLIENT TRACKING on");
        setup.run_tracker("MGET a b c");
        assert_eq!(setup.engine.tracking.totals(), (1, 3, 3, 0));
        setup.engine.disconnect(&mut setup.tracker, 0);
        assert_eq!(setup.engine.tracking.totals(), (0, 0, 0, 0));
        assert!(!setup.engine.tracking.is_active());
    }

    #[test]
    fn a_redirected_message_is_a_pubsub_message_for_a_resp2_subscriber() {
        let message = Reply::Push(vec![Reply::bulk_str(REDIRECTED), Reply::Nil]);
        assert!(frame_for(message.clone(), false, false).is_none());
        assert_eq!(
            frame_for(message.clone(), false, true),
            Some(Reply::Push(vec![Reply::bulk_str("message"), Reply::bulk_str(INVALIDATE_CHANNEL), Reply::Nil]))
        );
        assert_eq!(frame_for(message, true, false), Some(Reply::Push(vec![Reply::bulk_str(FOR_SELF), Reply::Nil])));
    }
}
