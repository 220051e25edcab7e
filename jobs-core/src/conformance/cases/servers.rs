//! `server_heartbeat`, `server_list` and `server_remove`.

use std::time::Duration;

use chrono::Utc;

use super::{server_info, whole_second, HOUR};
use crate::model::{ServerId, ServerInfo};
use crate::store::{ServerHeartbeatParams, ServerListParams, ServerRemoveParams, Store};

/// Heartbeats insert or update a server's record with `heartbeat_at` set by
/// the store and `stale_after` as the server wrote it; servers are listed most recently started first; removal takes
/// the named server and those silent for longer than `stale_after`.
pub async fn server_heartbeat_list_remove<S: Store>(store: S) {
    let list_ids = || {
        let store = &store;
        async move {
            store
                .server_list(ServerListParams::new())
                .await
                .expect("server_list failed")
        }
    };
    let heartbeat = |info: ServerInfo| {
        let store = &store;
        async move {
            store
                .server_heartbeat(ServerHeartbeatParams::new(info))
                .await
                .expect("server_heartbeat failed")
        }
    };
    let remove = |id: Option<ServerId>, stale_after: Duration| {
        let store = &store;
        async move {
            store
                .server_remove(match id {
                    Some(id) => ServerRemoveParams::silent_for(stale_after).and_server(id),
                    None => ServerRemoveParams::silent_for(stale_after),
                })
                .await
                .expect("server_remove failed")
        }
    };
    assert!(list_ids().await.is_empty());
    let base = whole_second(Utc::now()) - chrono::Duration::hours(1);
    let (s1, s2, s3) = (ServerId::new(), ServerId::new(), ServerId::new());
    // Not the default, and with a fraction of a second, to show it is stored.
    let info1 = server_info(s1, base, 8).stale_after(Duration::from_millis(37_250));
    let info2 = server_info(s2, base + chrono::Duration::minutes(10), 16);
    heartbeat(info1.clone()).await;
    heartbeat(info2.clone()).await;
    let servers = list_ids().await;
    assert_eq!(
        servers.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![s2, s1],
        "most recently started first"
    );
    let got = &servers[1];
    assert_eq!(
        (
            &got.host,
            got.pid,
            &got.queues,
            got.concurrency,
            &got.job_names,
            got.started_at,
            got.stale_after
        ),
        (
            &info1.host,
            info1.pid,
            &info1.queues,
            info1.concurrency,
            &info1.job_names,
            info1.started_at,
            info1.stale_after
        ),
        "the record round-trips"
    );
    assert!(
        got.heartbeat_at > base + chrono::Duration::minutes(30),
        "heartbeat_at is the store's time, not the given one"
    );

    heartbeat(server_info(s1, base, 32)).await;
    let servers = list_ids().await;
    assert_eq!(servers.len(), 2, "a heartbeat updates, not duplicates");
    let again = servers.iter().find(|s| s.id == s1).unwrap();
    assert_eq!(again.concurrency, 32);
    assert_eq!(
        again.stale_after,
        server_info(s1, base, 32).stale_after,
        "a heartbeat replaces `stale_after` too"
    );

    assert_eq!(remove(Some(s1), HOUR).await, 1, "remove by id");
    assert_eq!(
        list_ids().await.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![s2]
    );

    // The store's clock decides staleness, so this waits in real time: s3
    // falls silent for 3 s, s2 beats just before the removal. The margins are
    // wide because a loaded machine can take most of a second between two
    // statements (750 ms was once not enough for s2).
    heartbeat(server_info(s3, base + chrono::Duration::minutes(20), 4)).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    heartbeat(info2.clone()).await;
    assert_eq!(
        remove(None, Duration::from_millis(1500)).await,
        1,
        "the silent server is stale"
    );
    assert_eq!(
        list_ids().await.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![s2]
    );
    assert_eq!(remove(Some(ServerId::new()), HOUR).await, 0);
    assert_eq!(remove(Some(s2), HOUR).await, 1);
    assert!(list_ids().await.is_empty());
}

/// A heartbeat stores what the server holds, attempts running and jobs
/// claimed ahead, and the next heartbeat replaces both.
pub async fn server_heartbeat_keeps_running_and_claimed_ahead<S: Store>(store: S) {
    let list = || async {
        store
            .server_list(ServerListParams::new())
            .await
            .expect("server_list failed")
    };
    let beat = |info: ServerInfo| {
        let store = &store;
        async move {
            store
                .server_heartbeat(ServerHeartbeatParams::new(info))
                .await
                .expect("server_heartbeat failed")
        }
    };
    let base = whole_second(Utc::now());
    let (busy, idle) = (ServerId::new(), ServerId::new());
    beat(server_info(busy, base, 16).running(16).claimed_ahead(40)).await;
    beat(server_info(idle, base, 8)).await;
    let held = |servers: &[ServerInfo], id: ServerId| {
        let server = servers.iter().find(|s| s.id == id).expect("listed");
        (server.running, server.claimed_ahead)
    };
    let servers = list().await;
    assert_eq!(held(&servers, busy), (16, 40), "the figures round-trip");
    assert_eq!(held(&servers, idle), (0, 0), "none unless given");

    beat(server_info(busy, base, 16).running(3)).await;
    assert_eq!(
        held(&list().await, busy),
        (3, 0),
        "a heartbeat replaces both figures"
    );
}
