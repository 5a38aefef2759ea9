//! A person's act on a system — a department's decision, a centre's reassignment, the
//! applicant's rating — handled as a message with an id, exactly once in effect.
//!
//! An act's id is the id of the message it causes (built in
//! [`message_ids`](crate::domain::message_ids) from the request and the state it acts on), so
//! it names the act wherever it goes. The system checks the request against its state, changes
//! the state, and records the act here: its id, the request (to tell a repeat from a different
//! request), its outputs and the answer it gave. Then it publishes the outputs, followed by the
//! snapshot of the case as it stands, and keeps sending them again, with the same ids, until the
//! bus takes them or refuses one for good ([`send_until_taken`]). Nothing is undone: once a
//! message may have left, the state that caused it must stay, or the system would contradict the
//! bus; a refused message is in dead-letters, and the snapshot that follows it is still written.
//!
//! This is [`Processed`](super::Processed) for what a person asks rather than what the bus
//! delivers. An inbound message's repeat comes from the bus, which redelivers it until it is
//! handled, so a failed publish waits for that redelivery; an act's repeat would have to come
//! from a person, so the system sends again by itself.
//!
//! Whoever asked is answered once the outputs are on the bus or refused for good
//! ([`Acted::delivery`]), or after `service.submit_timeout_ms` if the bus has done neither by
//! then: the act happened either way. The same request again answers the same [`Acted::result`]
//! and, once the bus answered, the same delivery: a refused act stays refused.

use crate::domain::{CaseId, Envelope, MessageId, Officer};
use crate::maps::Map;
use crate::port::{send_until_taken, Delivery, Publish, Sent};
use actix::prelude::*;
use std::any::Any;
use std::time::Duration;
use tokio::sync::oneshot;

/// What an act answers.
#[derive(Debug, Clone)]
pub struct Acted<T> {
    /// The result of the act (the approval, the signature, the rating, …).
    pub result: T,
    /// Where the act's messages stood when it was answered. The act is recorded whatever
    /// they did: when not yet on the bus, they are sent until the bus takes them; when refused
    /// for good, they are in dead-letters.
    pub delivery: Delivery,
}

/// A request for an act: its id and what was asked.
pub struct ActRequest {
    /// The id of the message the act causes, which names the act.
    pub id: MessageId,
    /// What was asked, written out: the same request again answers the same result.
    pub asked: String,
    /// What the act is about (a case, an event): the latest act on it can be found by this.
    pub subject: String,
    /// The officer acting, named on every message the act causes.
    pub by: Option<Officer>,
}

/// An act recorded.
struct Act {
    /// The case it acted on.
    case_id: CaseId,
    /// What it is about (see [`ActRequest::subject`]).
    subject: String,
    /// What was asked (see [`ActRequest::asked`]).
    asked: String,
    /// The answer given, a `T` of the handler's `Acted<T>`; boxed so that one record keeps
    /// the acts of every kind.
    answer: Box<dyn Any + Send>,
    /// Where its messages stand: [`Delivery::NotYet`] until the bus took or refused them.
    delivery: Delivery,
    /// Who waits to hear how the bus answered.
    waiters: Vec<oneshot::Sender<Delivery>>,
}

/// The acts a system took, and where and how they are sent.
pub struct Acts {
    /// Where the acts' messages go.
    bridge: Recipient<Publish>,
    /// How long whoever asked waits for an act's messages to be on the bus.
    timeout: Duration,
    /// Every act, by id.
    acts: Map<MessageId, Act>,
    /// The latest act on each subject.
    latest: Map<String, MessageId>,
    /// The acts on each case, so that a case's acts can be forgotten with it.
    by_case: Map<CaseId, Vec<MessageId>>,
}

impl Acts {
    /// No acts yet; their messages go to `bridge`, and whoever asked waits up to `timeout`
    /// for them to be on the bus.
    pub fn new(bridge: Recipient<Publish>, timeout: Duration) -> Self {
        Self {
            bridge,
            timeout,
            acts: Map::default(),
            latest: Map::default(),
            by_case: Map::default(),
        }
    }

    /// Forgets the acts on `case_ids`, cases the system closed longer ago than the flow
    /// topics' retention: the same request again is then checked against the state as a new
    /// one (and refused, the case being finished), as after a restart.
    pub fn forget_cases(&mut self, case_ids: &[CaseId]) {
        for case_id in case_ids {
            for id in self.by_case.remove(case_id).unwrap_or_default() {
                if let Some(act) = self.acts.remove(&id) {
                    if self.latest.get(&act.subject) == Some(&id) {
                        self.latest.remove(&act.subject);
                    }
                }
            }
        }
    }

    /// Whether an act on `case_id` is recorded.
    pub fn on_case(&self, case_id: &CaseId) -> bool {
        self.by_case.contains_key(case_id)
    }

    /// How many acts are recorded.
    pub fn len(&self) -> usize {
        self.acts.len()
    }

    /// Whether no act is recorded.
    pub fn is_empty(&self) -> bool {
        self.acts.is_empty()
    }

    /// The id of the latest act on `subject`.
    pub fn latest(&self, subject: &str) -> Option<MessageId> {
        self.latest.get(subject).cloned()
    }

    /// How the bus answered the act's messages, or a receiver told when it does.
    fn wait(&mut self, id: &MessageId) -> Result<Delivery, oneshot::Receiver<Delivery>> {
        let Some(act) = self.acts.get_mut(id) else {
            // `id` was just looked up or recorded, and only acts on cases closed long ago are
            // forgotten: this cannot be.
            return Ok(Delivery::NotYet);
        };
        if act.delivery != Delivery::NotYet {
            return Ok(act.delivery.clone());
        }
        let (tx, rx) = oneshot::channel();
        act.waiters.push(tx);
        Err(rx)
    }

    /// The bus answered the act's messages: record how, and tell whoever waits.
    fn settled(&mut self, id: &MessageId, sent: Sent) {
        if let Some(act) = self.acts.get_mut(id) {
            act.delivery = sent.into();
            for waiter in act.waiters.drain(..) {
                // A waiter that stopped waiting was already answered.
                let _ = waiter.send(act.delivery.clone());
            }
        }
    }
}

/// A system that takes acts from people.
pub trait TakesActs: Actor<Context = Context<Self>> {
    /// Its record of acts.
    fn acts(&mut self) -> &mut Acts;
    /// The snapshot of `case_id` to write after an act's messages, if the system writes one.
    fn act_snapshot(&mut self, _case_id: &CaseId) -> Option<Envelope> {
        None
    }
    /// The bus took or refused for good the messages of an act on `case_id`: the case may be
    /// finished now.
    fn act_sent(&mut self, _case_id: &CaseId) {}
}

/// The answer to a repeat: when `id` names an act taken on the same request, the answer it
/// gave (once the bus took or refused its messages, or after the timeout). `None` when there is no
/// such act, and the request is checked against the state as a new one.
pub fn repeat<A: TakesActs, T: Clone + Send + 'static, E: 'static>(
    actor: &mut A,
    id: Option<MessageId>,
    asked: &str,
) -> Option<ResponseActFuture<A, Result<Acted<T>, E>>> {
    let id = id?;
    let act = actor
        .acts()
        .acts
        .get(&id)
        .filter(|act| act.asked == asked)?;
    let answer = act.answer.downcast_ref::<T>()?.clone();
    Some(answer_when_sent(actor, &id, answer))
}

/// Records an act whose state change is made, sends `outputs` until the bus takes them, and
/// answers `answer` once the bus took or refused them, or the timeout passed.
pub fn take<A: TakesActs, T: Clone + Send + 'static, E: 'static>(
    actor: &mut A,
    ctx: &mut Context<A>,
    request: ActRequest,
    case_id: CaseId,
    outputs: Vec<Envelope>,
    answer: T,
) -> ResponseActFuture<A, Result<Acted<T>, E>> {
    let ActRequest {
        id,
        asked,
        subject,
        by,
    } = request;
    let mut outputs = outputs;
    for output in &mut outputs {
        output.acted_by.clone_from(&by);
    }
    let act = Act {
        case_id: case_id.clone(),
        subject: subject.clone(),
        asked,
        answer: Box::new(answer.clone()),
        delivery: Delivery::NotYet,
        waiters: Vec::new(),
    };
    let acts = actor.acts();
    if let Some(replaced) = acts.acts.insert(id.clone(), act) {
        // The same id again (a request checked as new after its case opened again): one entry.
        if let Some(ids) = acts.by_case.get_mut(&replaced.case_id) {
            ids.retain(|known| known != &id);
        }
    }
    acts.by_case
        .entry(case_id.clone())
        .or_default()
        .push(id.clone());
    acts.latest.insert(subject, id.clone());
    send(actor, ctx, id.clone(), case_id, outputs);
    answer_when_sent(actor, &id, answer)
}

/// Sends an act's messages, then the snapshot of its case as it now stands, until the bus
/// takes them or refuses one for good, and records which.
fn send<A: TakesActs>(
    actor: &mut A,
    ctx: &mut Context<A>,
    id: MessageId,
    case_id: CaseId,
    mut outputs: Vec<Envelope>,
) {
    outputs.extend(actor.act_snapshot(&case_id));
    let sent = send_until_taken(&actor.acts().bridge, outputs);
    ctx.spawn(sent.into_actor(actor).map(move |sent, actor, _| {
        if let Sent::Refused(refusal) = &sent {
            tracing::error!(reason = %refusal.reason, act = %id, "the bus refused an act's message for good; it is in dead-letters");
        }
        actor.acts().settled(&id, sent);
        actor.act_sent(&case_id);
    }));
}

/// Answers `answer` once the bus took or refused the act `id`, or when the timeout passes.
fn answer_when_sent<A: TakesActs, T: 'static, E: 'static>(
    actor: &mut A,
    id: &MessageId,
    answer: T,
) -> ResponseActFuture<A, Result<Acted<T>, E>> {
    let acts = actor.acts();
    let sent = acts.wait(id);
    let timeout = acts.timeout;
    Box::pin(
        async move {
            let delivery = match sent {
                Ok(delivery) => delivery,
                Err(sent) => match tokio::time::timeout(timeout, sent).await {
                    Ok(Ok(delivery)) => delivery,
                    // Still sending (or the system stopped): the act is kept all the same.
                    Ok(Err(_)) | Err(_) => Delivery::NotYet,
                },
            };
            Ok(Acted {
                result: answer,
                delivery,
            })
        }
        .into_actor(actor),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EnvelopeHead, MessageType, SystemId};
    use crate::port::testing::FakeBridge;
    use crate::port::Delivery;
    use chrono::Utc;
    use std::sync::{Arc, Mutex};

    /// A system with one act: rating case `c1`, answered with the score doubled.
    struct Desk {
        /// Its acts.
        acts: Acts,
    }

    impl Actor for Desk {
        type Context = Context<Self>;
    }

    impl TakesActs for Desk {
        fn acts(&mut self) -> &mut Acts {
            &mut self.acts
        }
    }

    /// Rate case `c1`.
    #[derive(Message)]
    #[rtype(result = "Result<Acted<u32>, ()>")]
    struct Rate(u32);

    impl Handler<Rate> for Desk {
        type Result = ResponseActFuture<Self, Result<Acted<u32>, ()>>;

        fn handle(&mut self, msg: Rate, ctx: &mut Self::Context) -> Self::Result {
            let id = MessageId::from_string("c1/rated");
            let asked = msg.0.to_string();
            if let Some(repeat) = repeat(self, Some(id.clone()), &asked) {
                return repeat;
            }
            if self.acts.latest("c1").is_some() {
                return Box::pin(fut::ready(Err(())));
            }
            let case_id = CaseId::from_string("c1");
            let head = EnvelopeHead {
                id: id.clone(),
                kind: MessageType::CaseRated,
                case_id: case_id.clone(),
                source: SystemId::Intake,
                target: SystemId::Intake,
                trace_id: String::new(),
            };
            let envelope = Envelope::new_at(head, &msg.0, Utc::now());
            let request = ActRequest {
                id,
                asked,
                subject: "c1".into(),
                by: None,
            };
            take(self, ctx, request, case_id, vec![envelope], msg.0 * 2)
        }
    }

    #[actix_web::test]
    async fn an_act_the_bus_refuses_is_kept_sent_again_until_taken_and_repeats_answer_the_same() {
        // Arrange
        let taken = Arc::new(Mutex::new(Vec::new()));
        let bridge = FakeBridge {
            transient: 2,
            for_good: 0,
            takes_snapshots: true,
            taken: taken.clone(),
        }
        .start();
        let acts = Acts::new(bridge.recipient(), Duration::from_millis(50));
        let desk = Desk { acts }.start();

        // Act
        let first = desk.send(Rate(2)).await.expect("desk runs").expect("taken");
        let mut repeat = desk.send(Rate(2)).await.expect("desk runs").expect("taken");
        for _ in 0..100 {
            if repeat.delivery == Delivery::OnBus {
                break;
            }
            repeat = desk.send(Rate(2)).await.expect("desk runs").expect("taken");
        }
        let other = desk.send(Rate(5)).await.expect("desk runs");

        // Assert
        assert_eq!(
            (first.result, first.delivery),
            (4, Delivery::NotYet),
            "taken, not on the bus"
        );
        assert_eq!(
            (repeat.result, repeat.delivery),
            (4, Delivery::OnBus),
            "sent again until taken"
        );
        assert!(
            other.is_err(),
            "a different request is checked as a new one"
        );
        let taken = taken.lock().expect("not poisoned").clone();
        assert_eq!(taken, ["c1/rated"], "sent until taken, taken once");
    }

    #[actix_web::test]
    async fn an_act_the_bus_refuses_for_good_is_answered_refused_and_so_is_its_repeat() {
        // Arrange: a bus that refuses the act's message for good; a long wait for the bus, so
        // that an answer before it tells the refusal was heard, not waited out.
        let taken = Arc::new(Mutex::new(Vec::new()));
        let bridge = FakeBridge {
            transient: 0,
            for_good: 1,
            takes_snapshots: false,
            taken: taken.clone(),
        }
        .start();
        let acts = Acts::new(bridge.recipient(), Duration::from_secs(60));
        let desk = Desk { acts }.start();

        // Act
        let first = desk.send(Rate(2)).await.expect("desk runs").expect("taken");
        let repeat = desk.send(Rate(2)).await.expect("desk runs").expect("taken");

        // Assert: both say the bus refused it, and why; it is not sent again.
        let Delivery::Refused(refusal) = &first.delivery else {
            panic!("refused for good, not {:?}", first.delivery);
        };
        assert!(refusal.reason.contains("exceeds"), "{refusal:?}");
        assert!(refusal.too_large, "{refusal:?}");
        assert_eq!((repeat.result, repeat.delivery), (4, first.delivery));
        assert!(taken.lock().expect("not poisoned").is_empty());
    }
}
