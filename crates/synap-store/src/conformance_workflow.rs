//! The workflow part of the conformance suite: what every backend's workflow
//! tables must do (`synap_store::workflow`), expanded per backend with
//! [`workflow_conformance_suite!`](crate::workflow_conformance_suite) on the same
//! [`StoreFactory`] as the main suite.

use crate::api::{CommandRequest, PageRequest, Scope, Target};
use crate::conformance::{Harness, StoreFactory};
use crate::workflow::{
    ClaimRequest, ClaimableWorkflow, Fenced, NewRun, RetryOutcome, RunFilter, RunStatus,
    RunTransition, ScheduleSpec, StepOutcome, StepResult, StepStatus, scheduled_run_id,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use std::time::Duration;
use synap_domain::command::{CreateEntity, EntityCommand};
use synap_domain::event::{EventMetadata, Source};
use synap_domain::ids::EntityId;
use uuid::Uuid;

const START: &str = "2026-03-01T12:00:00Z";
const LEASE: Duration = Duration::from_secs(30);

fn start() -> Timestamp {
    START.parse().expect("a valid start time")
}

fn claim(owner: &str, workflows: &[&str], limit: u32) -> ClaimRequest {
    ClaimRequest {
        owner: owner.into(),
        workflows: workflows
            .iter()
            .map(|name| ClaimableWorkflow {
                name: (*name).into(),
                concurrency_limit: None,
            })
            .collect(),
        limit,
        lease: LEASE,
    }
}

fn note_command(scope: Scope, run: NewRun) -> CommandRequest {
    CommandRequest::new(
        scope,
        Target::Entity {
            id: EntityId::new_v7(),
            command: EntityCommand::Create(CreateEntity::note("a thought")),
        },
        EventMetadata {
            source: Source::Api,
            ..EventMetadata::default()
        },
    )
    .triggering(run)
}

fn step_ok(name: &str, at: Timestamp, output: serde_json::Value) -> StepResult {
    StepResult {
        name: name.into(),
        started_at: at,
        duration: Duration::from_millis(5),
        outcome: StepOutcome::Succeeded(output),
    }
}

/// A run is inserted with the command that triggers it; a replay of the command
/// enqueues nothing again; a refused command enqueues nothing.
pub async fn runs_are_enqueued_in_the_commands_transaction<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(start()).await;
    let run = NewRun::new("capture.test", json!({"n": 1}));
    let request = note_command(h.owner, run.clone());
    let outcome = h.store.execute(request.clone()).await.expect("the command");
    let detail = h
        .store
        .run_detail(&h.owner, run.id)
        .await
        .expect("read the run")
        .expect("the run was enqueued with the command");
    assert_eq!(detail.run.status, RunStatus::Queued);
    assert_eq!(
        detail.run.trigger_position,
        Some(outcome.events[0].position)
    );
    assert_eq!(detail.run.next_attempt_at, start());
    // Replaying the command (same id) enqueues nothing twice and does not fail.
    let replay = h.store.execute(request).await.expect("the replay");
    assert!(replay.replayed);
    let all = h
        .store
        .list_runs(&h.owner, &RunFilter::default(), &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(all.items.len(), 1, "a replay enqueues nothing");
    // A refused command (a stale expected version) enqueues nothing.
    let refused_run = NewRun::new("capture.test", json!({}));
    let refused = note_command(h.owner, refused_run.clone()).expecting(Some(7));
    assert!(h.store.execute(refused).await.is_err());
    assert!(
        h.store
            .run_detail(&h.owner, refused_run.id)
            .await
            .expect("read")
            .is_none(),
        "a refused command enqueues nothing"
    );
    // A command that fails after writing (its triggered run's id is taken)
    // rolls back its events too.
    let head = h.head().await;
    let duplicate = note_command(h.owner, NewRun { ..run.clone() });
    assert!(h.store.execute(duplicate).await.is_err());
    assert_eq!(h.head().await, head, "the command was rolled back whole");
}

/// Claims give a run to one lease at a time; a fenced write from a worker whose
/// lease expired is rejected, and the new holder's writes land.
pub async fn a_stalled_workers_late_write_is_rejected<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(start()).await;
    let run = h
        .store
        .enqueue_run(&h.owner, NewRun::new("wf.a", json!({})))
        .await
        .expect("enqueue");
    let first = h
        .store
        .claim_runs(&claim("a", &["wf.a"], 4))
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].lease.attempt, 1);
    assert!(
        h.store
            .claim_runs(&claim("b", &["wf.a"], 4))
            .await
            .expect("claim")
            .is_empty(),
        "a leased run is not claimed twice"
    );
    // The lease runs out; another worker takes the run over.
    h.set_time(start() + SignedDuration::from_secs(31));
    let second = h
        .store
        .claim_runs(&claim("b", &["wf.a"], 4))
        .await
        .expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].lease.attempt, 2);
    let now = start() + SignedDuration::from_secs(31);
    let late = h
        .store
        .commit_step(
            &first[0].lease,
            Some(step_ok("one", now, json!("stale"))),
            RunTransition::Continue,
        )
        .await
        .expect("the late write is answered");
    assert_eq!(late, Fenced::LeaseLost);
    assert_eq!(
        h.store
            .heartbeat(&first[0].lease, LEASE)
            .await
            .expect("heartbeat"),
        Fenced::LeaseLost
    );
    let live = h
        .store
        .commit_step(
            &second[0].lease,
            Some(step_ok("one", now, json!("fresh"))),
            RunTransition::Continue,
        )
        .await
        .expect("write");
    assert_eq!(live, Fenced::Done(()));
    let detail = h.store.run_detail(&h.owner, run.id).await.unwrap().unwrap();
    assert_eq!(detail.steps.len(), 1);
    assert_eq!(detail.steps[0].output, Some(json!("fresh")));
    assert_eq!(detail.run.attempt, 2);
    // Heartbeats extend the lease past the original expiry.
    let extended = h
        .store
        .heartbeat(&second[0].lease, LEASE)
        .await
        .expect("heartbeat");
    assert!(matches!(extended, Fenced::Done(at) if at == now + SignedDuration::from_secs(30)));
    h.set_time(now + SignedDuration::from_secs(20));
    assert_eq!(
        h.store
            .heartbeat(&second[0].lease, LEASE)
            .await
            .expect("heartbeat"),
        Fenced::Done(now + SignedDuration::from_secs(50))
    );
}

/// A succeeded step's output is stored once; the run's steps and errors are
/// recorded; only failed runs can be retried, from their failed step.
pub async fn steps_are_memoised_and_failed_runs_retry_from_the_failed_step<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(start()).await;
    let run = h
        .store
        .enqueue_run(&h.owner, NewRun::new("wf.m", json!({"x": 1})))
        .await
        .expect("enqueue");
    let claimed = h
        .store
        .claim_runs(&claim("a", &["wf.m"], 1))
        .await
        .unwrap()
        .remove(0);
    let lease = claimed.lease;
    let now = start();
    let write = |step, transition| h.store.commit_step(&lease, Some(step), transition);
    assert_eq!(
        write(
            step_ok("one", now, json!({"v": 1})),
            RunTransition::Continue
        )
        .await
        .unwrap(),
        Fenced::Done(())
    );
    // A second success of the same step does not replace the stored output.
    assert_eq!(
        write(
            step_ok("one", now, json!({"v": 2})),
            RunTransition::Continue
        )
        .await
        .unwrap(),
        Fenced::Done(())
    );
    let failed = StepResult {
        name: "two".into(),
        started_at: now,
        duration: Duration::from_millis(7),
        outcome: StepOutcome::Failed {
            error: "boom".into(),
            final_failure: true,
        },
    };
    assert_eq!(
        write(
            failed,
            RunTransition::Failed {
                error: "step two failed".into()
            }
        )
        .await
        .unwrap(),
        Fenced::Done(())
    );
    let detail = h.store.run_detail(&h.owner, run.id).await.unwrap().unwrap();
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(detail.run.error.as_deref(), Some("step two failed"));
    assert_eq!(detail.run.lease_owner, None);
    assert_eq!(
        detail
            .steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert_eq!(detail.steps[0].output, Some(json!({"v": 1})), "stored once");
    assert_eq!(detail.steps[1].status, StepStatus::Failed);
    assert_eq!(detail.steps[1].attempts, 1);
    assert_eq!(detail.steps[1].last_error.as_deref(), Some("boom"));
    assert_eq!(detail.steps[1].last_duration_us, 7_000);
    // The finished lease is gone: more writes are refused.
    assert_eq!(
        h.store
            .commit_step(&lease, None, RunTransition::Succeeded)
            .await
            .unwrap(),
        Fenced::LeaseLost
    );
    // Retry: back to queued, the succeeded step stays, the failed one re-opens.
    let RetryOutcome::Requeued(requeued) = h.store.retry_run(&h.owner, run.id).await.unwrap()
    else {
        panic!("a failed run is retried");
    };
    assert_eq!(requeued.status, RunStatus::Queued);
    assert_eq!(requeued.error, None);
    let again = h
        .store
        .claim_runs(&claim("b", &["wf.m"], 1))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(again.lease.attempt, 2);
    let memo: Vec<_> = again
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status, s.attempts))
        .collect();
    assert_eq!(
        memo,
        [
            ("one", StepStatus::Succeeded, 1),
            ("two", StepStatus::Pending, 0)
        ]
    );
    assert_eq!(
        h.store.retry_run(&h.owner, run.id).await.unwrap(),
        RetryOutcome::NotFailed(RunStatus::Running)
    );
    assert_eq!(
        h.store.retry_run(&h.owner, Uuid::now_v7()).await.unwrap(),
        RetryOutcome::NotFound
    );
}

/// A failed attempt releases the run until its backoff: not claimable before.
pub async fn a_waiting_run_is_claimed_only_when_its_backoff_has_passed<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(start()).await;
    let run = h
        .store
        .enqueue_run(&h.owner, NewRun::new("wf.w", json!({})))
        .await
        .unwrap();
    let lease = h
        .store
        .claim_runs(&claim("a", &["wf.w"], 1))
        .await
        .unwrap()
        .remove(0)
        .lease;
    let retry_at = start() + SignedDuration::from_secs(10);
    let failed = StepResult {
        name: "one".into(),
        started_at: start(),
        duration: Duration::from_millis(1),
        outcome: StepOutcome::Failed {
            error: "flaky".into(),
            final_failure: false,
        },
    };
    let written = h
        .store
        .commit_step(
            &lease,
            Some(failed),
            RunTransition::RetryAt {
                at: retry_at,
                error: "step one failed".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(written, Fenced::Done(()));
    let detail = h.store.run_detail(&h.owner, run.id).await.unwrap().unwrap();
    assert_eq!(detail.run.status, RunStatus::Waiting);
    assert_eq!(detail.run.next_attempt_at, retry_at);
    assert_eq!(detail.steps[0].status, StepStatus::Pending);
    h.set_time(retry_at - SignedDuration::from_secs(1));
    assert!(
        h.store
            .claim_runs(&claim("a", &["wf.w"], 1))
            .await
            .unwrap()
            .is_empty()
    );
    h.set_time(retry_at);
    assert_eq!(
        h.store
            .claim_runs(&claim("a", &["wf.w"], 1))
            .await
            .unwrap()
            .len(),
        1
    );
    // Only the workflows asked for are claimed.
    h.store
        .enqueue_run(&h.owner, NewRun::new("wf.other", json!({})))
        .await
        .unwrap();
    assert!(
        h.store
            .claim_runs(&claim("a", &["wf.w"], 4))
            .await
            .unwrap()
            .is_empty()
    );
}

/// No more runs of one concurrency key hold live leases than the limit, also
/// with several claimers at once.
pub async fn the_concurrency_key_limit_holds_across_claimers<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(start()).await;
    for n in 0..6 {
        let key = if n % 2 == 0 { "even" } else { "odd" };
        h.store
            .enqueue_run(
                &h.owner,
                NewRun::new("wf.k", json!({"n": n})).with_concurrency_key(key),
            )
            .await
            .unwrap();
    }
    let limited = |owner: &str| ClaimRequest {
        workflows: vec![ClaimableWorkflow {
            name: "wf.k".into(),
            concurrency_limit: Some(2),
        }],
        ..claim(owner, &[], 8)
    };
    let claims = futures_join((0..4).map(|n| {
        let store = h.store.clone();
        let request = limited(&format!("worker-{n}"));
        async move { store.claim_runs(&request).await.expect("claim") }
    }))
    .await;
    let claimed: Vec<_> = claims.into_iter().flatten().collect();
    let per_key = |key: &str| {
        claimed
            .iter()
            .filter(|c| c.run.concurrency_key.as_deref() == Some(key))
            .count()
    };
    assert_eq!(
        (per_key("even"), per_key("odd")),
        (2, 2),
        "two per key, no more"
    );
    // A finished run frees its slot.
    let done = claimed
        .iter()
        .find(|c| c.run.concurrency_key.as_deref() == Some("even"))
        .unwrap();
    assert_eq!(
        h.store
            .commit_step(&done.lease, None, RunTransition::Succeeded)
            .await
            .unwrap(),
        Fenced::Done(())
    );
    let next = h.store.claim_runs(&limited("late")).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].run.concurrency_key.as_deref(), Some("even"));
}

async fn futures_join<T: Send + 'static>(
    futures: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("a claimer task"));
    }
    results
}

/// Runs are the caller's: another user lists none of them, reads none, retries
/// or cancels none.
pub async fn runs_are_isolated_per_user<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(start()).await;
    let run = h
        .store
        .enqueue_run(&h.owner, NewRun::new("wf.i", json!({})))
        .await
        .unwrap();
    let other = h.second_user("other@example.com").await;
    let theirs = h
        .store
        .list_runs(&other, &RunFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert!(theirs.items.is_empty());
    assert!(h.store.run_detail(&other, run.id).await.unwrap().is_none());
    assert_eq!(
        h.store.retry_run(&other, run.id).await.unwrap(),
        RetryOutcome::NotFound
    );
    assert!(h.store.cancel_run(&other, run.id).await.unwrap().is_none());
    assert_eq!(
        h.store
            .run_detail(&h.owner, run.id)
            .await
            .unwrap()
            .unwrap()
            .run
            .status,
        RunStatus::Queued,
        "untouched by the other user"
    );
    // Cancelling stops a leased run: its holder loses the lease.
    let lease = h
        .store
        .claim_runs(&claim("a", &["wf.i"], 1))
        .await
        .unwrap()
        .remove(0)
        .lease;
    let cancelled = h.store.cancel_run(&h.owner, run.id).await.unwrap().unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!(
        h.store
            .commit_step(&lease, None, RunTransition::Succeeded)
            .await
            .unwrap(),
        Fenced::LeaseLost
    );
}

/// Listing filters by status and workflow and pages with a cursor, newest first.
pub async fn run_listing_filters_and_pages<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(start()).await;
    let mut ids = Vec::new();
    for n in 0..5u32 {
        h.set_time(start() + SignedDuration::from_secs(i64::from(n)));
        let workflow = if n < 3 { "wf.a" } else { "wf.b" };
        ids.push(
            h.store
                .enqueue_run(&h.owner, NewRun::new(workflow, json!({"n": n})))
                .await
                .unwrap()
                .id,
        );
    }
    let page = |cursor: Option<String>| PageRequest {
        limit: Some(2),
        cursor,
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let listed = h
            .store
            .list_runs(&h.owner, &RunFilter::default(), &page(cursor))
            .await
            .unwrap();
        seen.extend(listed.items.iter().map(|r| r.id));
        match listed.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every run once");
    let only_b = RunFilter {
        workflow: Some("wf.b".into()),
        ..RunFilter::default()
    };
    assert_eq!(
        h.store
            .list_runs(&h.owner, &only_b, &PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    h.store.claim_runs(&claim("a", &["wf.a"], 1)).await.unwrap();
    let running = RunFilter {
        status: Some(RunStatus::Running),
        ..RunFilter::default()
    };
    let listed = h
        .store
        .list_runs(&h.owner, &running, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].workflow, "wf.a");
    let bad = PageRequest {
        limit: None,
        cursor: Some("not-a-cursor".into()),
    };
    assert!(
        h.store
            .list_runs(&h.owner, &RunFilter::default(), &bad)
            .await
            .is_err()
    );
    let depth = h.store.queue_depth().await.unwrap();
    let count = |wf: &str, status| {
        depth
            .iter()
            .find(|d| d.workflow == wf && d.status == status)
            .map_or(0, |d| d.count)
    };
    assert_eq!(
        (
            count("wf.a", RunStatus::Queued),
            count("wf.a", RunStatus::Running),
            count("wf.b", RunStatus::Queued)
        ),
        (2, 1, 2)
    );
}

/// A due schedule fires once per firing time (whoever fires it), enqueueing a
/// run for its user.
pub async fn schedules_fire_once_when_due<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(start()).await;
    let first_fire = start() + SignedDuration::from_secs(60);
    let spec = ScheduleSpec {
        name: "insights".into(),
        workflow: "wf.cron".into(),
        cron: "* * * * *".into(),
        input: json!({"kind": "insight"}),
        next_fire_at: first_fire,
    };
    let schedule = h.store.put_schedule(&h.owner, spec.clone()).await.unwrap();
    assert!(
        h.store.due_schedules(10).await.unwrap().is_empty(),
        "not due yet"
    );
    h.set_time(first_fire);
    let due = h.store.due_schedules(10).await.unwrap();
    assert_eq!(due.len(), 1);
    let next = first_fire + SignedDuration::from_secs(60);
    assert!(
        h.store
            .fire_schedule(&due[0], first_fire, next)
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .fire_schedule(&due[0], first_fire, next)
            .await
            .unwrap(),
        "fires once"
    );
    let run = h
        .store
        .run_detail(&h.owner, scheduled_run_id(schedule.id, first_fire))
        .await
        .unwrap()
        .expect("the scheduled run");
    assert_eq!(run.run.workflow, "wf.cron");
    assert_eq!(run.run.input, json!({"kind": "insight"}));
    let listed = h.store.list_schedules(&h.owner).await.unwrap();
    assert_eq!(listed[0].next_fire_at, next);
    // Re-putting the same cron keeps the firing time; another user sees nothing.
    let again = h.store.put_schedule(&h.owner, spec).await.unwrap();
    assert_eq!(again.next_fire_at, next);
    let other = h.second_user("cron@example.com").await;
    assert!(h.store.list_schedules(&other).await.unwrap().is_empty());
}

/// Retention: a purge deletes the runs that finished before the cut-off, of
/// every user, oldest first and at most the batch size, with their steps; a run
/// that finished later, and every unfinished run however old, stays.
pub async fn finished_runs_are_purged_after_retention<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(start()).await;
    let other = h.second_user("retention@example.com").await;
    let finish = |scope: Scope, step: &'static str, transition: RunTransition| {
        let store = h.store.clone();
        async move {
            let run = store
                .enqueue_run(&scope, NewRun::new("wf.kept", json!({})))
                .await
                .expect("enqueue");
            let claimed = store
                .claim_runs(&claim("w", &["wf.kept"], 1))
                .await
                .expect("claim");
            assert_eq!(claimed.len(), 1);
            let at = claimed[0].run.updated_at;
            let written = store
                .commit_step(
                    &claimed[0].lease,
                    Some(step_ok(step, at, json!(1))),
                    transition,
                )
                .await
                .expect("finish");
            assert_eq!(written, Fenced::Done(()));
            run.id
        }
    };
    // Day 0: one succeeded run of each user; day 1: a failed one; day 2: a
    // cancelled one; day 3: a succeeded one. Plus an old run never started.
    let queued = h
        .store
        .enqueue_run(&h.owner, NewRun::new("wf.unclaimed", json!({})))
        .await
        .expect("enqueue")
        .id;
    let day0_owner = finish(h.owner, "only", RunTransition::Succeeded).await;
    let day0_other = finish(other, "only", RunTransition::Succeeded).await;
    h.set_time(start() + SignedDuration::from_hours(24));
    let day1_failed = finish(
        h.owner,
        "only",
        RunTransition::Failed {
            error: "gave up".into(),
        },
    )
    .await;
    h.set_time(start() + SignedDuration::from_hours(48));
    let day2_cancelled = h
        .store
        .enqueue_run(&h.owner, NewRun::new("wf.kept", json!({})))
        .await
        .expect("enqueue")
        .id;
    h.store
        .cancel_run(&h.owner, day2_cancelled)
        .await
        .expect("cancel");
    h.set_time(start() + SignedDuration::from_hours(72));
    let day3 = finish(h.owner, "only", RunTransition::Succeeded).await;

    let exists = |scope: Scope, id: Uuid| {
        let store = h.store.clone();
        async move { store.run_detail(&scope, id).await.expect("read").is_some() }
    };
    let cutoff = start() + SignedDuration::from_hours(60);
    // A batch of 2 takes the two oldest: both day-0 runs, whoever's they are.
    assert_eq!(
        h.store.purge_finished_runs(cutoff, 2).await.expect("purge"),
        2
    );
    assert!(!exists(h.owner, day0_owner).await);
    assert!(!exists(other, day0_other).await);
    assert!(exists(h.owner, day1_failed).await);
    assert_eq!(
        h.store
            .purge_finished_runs(cutoff, 100)
            .await
            .expect("purge"),
        2
    );
    assert!(!exists(h.owner, day1_failed).await);
    assert!(!exists(h.owner, day2_cancelled).await);
    assert!(exists(h.owner, day3).await, "finished after the cut-off");
    let waiting = h.store.run_detail(&h.owner, queued).await.unwrap().unwrap();
    assert_eq!(waiting.run.status, RunStatus::Queued, "never started: kept");
    assert_eq!(
        h.store
            .purge_finished_runs(cutoff, 100)
            .await
            .expect("purge"),
        0
    );
    // The purged run's steps went with it: its id can be enqueued afresh and
    // shows no old steps.
    let again = h
        .store
        .enqueue_run(
            &h.owner,
            NewRun {
                id: day0_owner,
                ..NewRun::new("wf.unclaimed", json!({}))
            },
        )
        .await
        .expect("the id is free again");
    let detail = h
        .store
        .run_detail(&h.owner, again.id)
        .await
        .unwrap()
        .unwrap();
    assert!(detail.steps.is_empty(), "{:?}", detail.steps);
    assert!(matches!(
        h.store.purge_finished_runs(cutoff, 0).await,
        Err(crate::StoreError::InvalidInput(_))
    ));
}

/// Expands the workflow conformance tests for a backend's [`StoreFactory`].
#[macro_export]
macro_rules! workflow_conformance_suite {
    ($factory:path) => {
        $crate::workflow_conformance_suite!(@tests $factory;
            runs_are_enqueued_in_the_commands_transaction,
            a_stalled_workers_late_write_is_rejected,
            steps_are_memoised_and_failed_runs_retry_from_the_failed_step,
            a_waiting_run_is_claimed_only_when_its_backoff_has_passed,
            the_concurrency_key_limit_holds_across_claimers,
            runs_are_isolated_per_user,
            run_listing_filters_and_pages,
            schedules_fire_once_when_due,
            finished_runs_are_purged_after_retention,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                if !<$factory as $crate::conformance::StoreFactory>::available() {
                    return;
                }
                $crate::conformance::bounded_test(
                    $crate::conformance_workflow::$name::<$factory>(),
                )
                .await;
            }
        )*
    };
}
