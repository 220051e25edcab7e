use jobs::job;

#[job(key_limit(by = [customer_id]))]
async fn sync_customer(customer_id: i64, full: bool) -> anyhow::Result<()> {
    let _ = (customer_id, full);
    Ok(())
}

#[job(key_limit(by = [account_id, region], running = 2), unique)]
async fn rebuild_index(account_id: i64, region: String) -> anyhow::Result<()> {
    let _ = (account_id, region);
    Ok(())
}

#[job(key_limit)]
async fn refresh(feed: String) -> anyhow::Result<()> {
    let _ = feed;
    Ok(())
}

fn main() {
    use jobs::Job;
    let limit = SyncCustomer::options().key_limit.expect("declared");
    assert_eq!(limit.args(), Some(&["customer_id"][..]));
    let key = limit.key_of("sync_customer", &serde_json::json!({ "customer_id": 7, "full": true })).unwrap();
    let same = limit.key_of("sync_customer", &serde_json::json!({ "full": false, "customer_id": 7 })).unwrap();
    assert_eq!(key, same, "the other arguments are not part of the key");
    assert_eq!(key.running, 1);
    assert_eq!(RebuildIndex::options().key_limit.unwrap().key_of("rebuild_index", &serde_json::json!({ "account_id": 1, "region": "eu" })).unwrap().running, 2);
    assert_eq!(Refresh::options().key_limit.unwrap().args(), None);
}
