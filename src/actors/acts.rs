//! A person's act on a system — a department's decision, a centre's reassignment, the
//! applicant's rating — handled as a message with an id, exactly once in effect.
//!
//! An act's id is the id of the message it causes (built in
//! [`message_ids`](crate::domain::message_ids) from the request and the state it acts on), so
//! it names the act wherever it goes. The system checks the request against its state, changes
//! the state, and records the act here: its id, the request (to tell a repeat from a different
//! request), its outputs and the answer it gave. Then it publishes the outputs, followed by the
//! snapshot of the case as it stands, and keeps sending them again, with the same ids, until the
//! bus takes them. Nothing is undone: once a message may have left, the state that caused it
//! must stay, or the system would contradict the bus.
//!
//! This is [`Processed`](super::Processed) for what a person asks rather than what the bus
//! delivers. An inbound message's repeat comes from the bus, which redelivers it until it is
//! handled, so a failed publish waits for that redelivery; an act's repeat would have to come
//! from a person, so the system sends again by itself.
//!
//! Whoever asked is answered once the outputs are on the bus ([`Acted::on_bus`]), or after
//! `service.submit_timeout_ms` if the bus has not taken them by then: the act happened either
//! way. The same request again answers the same [`Acted::result`].

use crate::domain::{CaseId, Envelope, MessageId};
use crate::port::{publish, HandleError, Publish};
use actix::prelude::*;
use std::any::Any;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long to wait before sending again the outputs of an act the bus did not take. The
/// bridge already retried them with backoff before it gave up, so this only paces the rounds.
const RESEND_AFTER: Duration = Duration::from_millis(500);

/// What an act answers.
#[derive(Debug, Clone)]
pub struct Acted<T> {
    /// The result of the act (the approval, the signature, the rating, …).
    pub result: T,
    /// Whether the act's messages were on the bus when it was answered. When not, the act is
    /// recorded all the same and its messages are sent until the bus takes them.
    pub on_bus: bool,
}

/// A request for an act: its id and what was asked.
pub struct ActRequest {
    /// The id of the message the act causes, which names the act.
    pub id: MessageId,
    /// What was asked, written out: the same request again answers the same result.
    pub asked: String,
    /// What the act is about (a case, an event): the latest act on it can be found by this.
    pub subject: String,
}

/// An act recorded.
struct Act {
    /// What was asked (see [`ActRequest::asked`]).
    asked: String,
    /// The answer given, a `T` of the handler's `Acted<T>`; boxed so that one record keeps
    /// the acts of every kind.
    answer: Box<dyn Any + Send>,
    /// Its messages; emptied once they are on the bus.
    outputs: Vec<Envelope>,
    /// The case whose snapshot follows the messages.
    case_id: CaseId,
    /// Whether the messages are on the bus.
    on_bus: bool,
    /// Who waits to hear that they are.
    waiters: Vec<oneshot::Sender<()>>,
}

/// The acts a system took, and where and how they are sent.
pub struct Acts {
    /// Where the acts' messages go.
    bridge: Recipient<Publish>,
    /// How long whoever asked waits for an act's messages to be on the bus.
    timeout: Duration,
    /// Every act, by id.
    acts: HashMap<MessageId, Act>,
    /// The latest act on each subject.
    latest: HashMap<String, MessageId>,
}

impl Acts {
    /// No acts yet; their messages go to `bridge`, and whoever asked waits up to `timeout`
    /// for them to be on the bus.
    pub fn new(bridge: Recipient<Publish>, timeout: Duration) -> Self {
        Self {
            bridge,
            timeout,
            acts: HashMap::new(),
            latest: HashMap::new(),
        }
    }

    /// The id of the latest act on `subject`.
    pub fn latest(&self, subject: &str) -> Option<MessageId> {
        self.latest.get(subject).cloned()
    }

    /// A receiver told when the act's messages are on the bus; none when they already are.
    fn wait(&mut self, id: &MessageId) -> Option<oneshot::Receiver<()>> {
        let act = self.acts.get_mut(id).filter(|act| !act.on_bus)?;
        let (tx, rx) = oneshot::channel();
        act.waiters.push(tx);
        Some(rx)
    }

    /// The act's messages are on the bus: tell whoever waits, and forget the messages.
    fn sent(&mut self, id: &MessageId) {
        if let Some(act) = self.acts.get_mut(id) {
            act.on_bus = true;
            act.outputs = Vec::new();
            for waiter in act.waiters.drain(..) {
                // A waiter that stopped waiting was already answered.
                let _ = waiter.send(());
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
}

/// The answer to a repeat: when `id` names an act taken on the same request, the answer it
/// gave (once its messages are on the bus, or after the timeout). `None` when there is no
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
/// answers `answer` once they are on the bus or the timeout passed.
pub fn take<A: TakesActs, T: Clone + Send + 'static, E: 'static>(
    actor: &mut A,
    ctx: &mut Context<A>,
    request: ActRequest,
    case_id: CaseId,
    outputs: Vec<Envelope>,
    answer: T,
) -> ResponseActFuture<A, Result<Acted<T>, E>> {
    let ActRequest { id, asked, subject } = request;
    let act = Act {
        asked,
        answer: Box::new(answer.clone()),
        outputs,
        case_id,
        on_bus: false,
        waiters: Vec::new(),
    };
    let acts = actor.acts();
    acts.acts.insert(id.clone(), act);
    acts.latest.insert(subject, id.clone());
    send(actor, ctx, id.clone());
    answer_when_sent(actor, &id, answer)
}

/// Sends an act's messages, then the snapshot of its case as it now stands; on failure sends
/// them again (same ids) after [`RESEND_AFTER`], until the bus takes them.
fn send<A: TakesActs>(actor: &mut A, ctx: &mut Context<A>, id: MessageId) {
    let Some(act) = actor.acts().acts.get(&id).filter(|act| !act.on_bus) else {
        return;
    };
    let case_id = act.case_id.clone();
    let mut outputs = act.outputs.clone();
    outputs.extend(actor.act_snapshot(&case_id));
    let sent = publish(&actor.acts().bridge, outputs);
    ctx.spawn(sent.into_actor(actor).map(move |sent, actor, ctx| match sent {
        Ok(()) => actor.acts().sent(&id),
        Err(HandleError::Poison(error)) => {
            // Sending the same records again would be refused again; the refused one is in
            // dead-letters with the reason.
            tracing::error!(%error, act = %id, "the bus refused an act's message for good; not sending it again");
        }
        Err(error) => {
            tracing::warn!(%error, act = %id, "an act's messages are not on the bus yet; sending them again");
            ctx.run_later(RESEND_AFTER, move |actor, ctx| send(actor, ctx, id));
        }
    }));
}

/// Answers `answer` once the act `id` is on the bus, or when the timeout passes.
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
            let on_bus = match sent {
                None => true,
                Some(sent) => matches!(tokio::time::timeout(timeout, sent).await, Ok(Ok(()))),
            };
            Ok(Acted {
                result: answer,
                on_bus,
            })
        }
        .into_actor(actor),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EnvelopeHead, MessageType, SystemId};
    use crate::port::PublishError;
    use chrono::Utc;
    use std::sync::{Arc, Mutex};

    /// A bridge that refuses the first `refuse` publishes and keeps the ids of the rest.
    struct FakeBridge {
        /// Publishes still to refuse.
        refuse: u32,
        /// The ids of the messages taken, in order.
        taken: Arc<Mutex<Vec<String>>>,
    }

    impl Actor for FakeBridge {
        type Context = Context<Self>;
    }

    impl Handler<Publish> for FakeBridge {
        type Result = Result<(), PublishError>;

        fn handle(&mut self, msg: Publish, _: &mut Self::Context) -> Self::Result {
            if self.refuse > 0 {
                self.refuse -= 1;
                return Err(PublishError::transient(1, "the bus is away"));
            }
            let ids = msg.0.into_iter().map(|e| e.id.to_string());
            self.taken.lock().expect("not poisoned").extend(ids);
            Ok(())
        }
    }

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
            };
            take(self, ctx, request, case_id, vec![envelope], msg.0 * 2)
        }
    }

    #[actix_web::test]
    async fn an_act_the_bus_refuses_is_kept_sent_again_until_taken_and_repeats_answer_the_same() {
        // Arrange
        let taken = Arc::new(Mutex::new(Vec::new()));
        let bridge = FakeBridge {
            refuse: 2,
            taken: taken.clone(),
        }
        .start();
        let acts = Acts::new(bridge.recipient(), Duration::from_millis(50));
        let desk = Desk { acts }.start();

        // Act
        let first = desk.send(Rate(2)).await.expect("desk runs").expect("taken");
        let mut repeat = desk.send(Rate(2)).await.expect("desk runs").expect("taken");
        for _ in 0..100 {
            if repeat.on_bus {
                break;
            }
            repeat = desk.send(Rate(2)).await.expect("desk runs").expect("taken");
        }
        let other = desk.send(Rate(5)).await.expect("desk runs");

        // Assert
        assert_eq!(
            (first.result, first.on_bus),
            (4, false),
            "taken, not on the bus"
        );
        assert_eq!(
            (repeat.result, repeat.on_bus),
            (4, true),
            "sent again until taken"
        );
        assert!(
            other.is_err(),
            "a different request is checked as a new one"
        );
        let taken = taken.lock().expect("not poisoned").clone();
        assert_eq!(taken, ["c1/rated"], "sent until taken, taken once");
    }
}
