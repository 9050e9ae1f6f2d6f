//! THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT (by base subject, then date) and
//! REFERENCES (Jamie Zawinski's algorithm over Message-ID, References and In-Reply-To, then
//! gathered by subject). Every walk over the tree is iterative, and the loop check walks at most
//! [`MAX_ANCESTRY`] parents: a crafted chain of 100,000 replies costs neither the stack nor
//! quadratic time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::response::StatusKind;
use imap_codec::imap_types::search::SearchKey;
use pushmail_core::types::Address;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{Result, no_or_bad, ok};
use crate::sort::Sortable;
use crate::state::{Imap, Session};
use crate::wire::Wire;

/// How far up a loop check looks: a thread deeper than this is split rather than checked
/// further.
const MAX_ANCESTRY: usize = 1_000;

/// One message as threading sees it.
pub(crate) struct Threadable {
    pub number: u32,
    pub seq: u32,
    pub sent: DateTime<Utc>,
    /// The base subject, upper-cased, and whether the subject said reply or forward.
    pub subject: (String, bool),
    pub message_id: Option<String>,
    /// References, else the first of In-Reply-To.
    pub references: Vec<String>,
}

impl Threadable {
    pub fn new(sortable: Sortable, by_uid: bool) -> Self {
        Self {
            number: if by_uid { sortable.uid } else { sortable.seq },
            seq: sortable.seq,
            sent: sortable.sent,
            subject: (sortable.subject_key, sortable.reply_or_forward),
            message_id: sortable.message_id,
            references: sortable.references,
        }
    }
}

#[derive(Default)]
struct Node {
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Tree<'m> {
    messages: &'m [Threadable],
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

impl<'m> Tree<'m> {
    fn new(messages: &'m [Threadable]) -> Self {
        Self {
            messages,
            nodes: Vec::new(),
            roots: Vec::new(),
        }
    }

    fn add(&mut self, message: Option<usize>) -> usize {
        self.nodes.push(Node {
            message,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    fn unlink(&mut self, child: usize) {
        if let Some(parent) = self.nodes[child].parent.take() {
            self.nodes[parent].children.retain(|&c| c != child);
        }
    }

    /// Whether `ancestor` is `node` or above it (or the walk is too deep to tell: then linking
    /// is refused as if it were).
    fn is_ancestor(&self, ancestor: usize, node: usize) -> bool {
        let mut at = Some(node);
        for _ in 0..MAX_ANCESTRY {
            match at {
                Some(n) if n == ancestor => return true,
                Some(n) => at = self.nodes[n].parent,
                None => return false,
            }
        }
        true
    }

    /// The key a node sorts by: its message's date and number, or a dummy's first child's.
    fn date_key(&self, node: usize) -> (DateTime<Utc>, u32) {
        let message = self.nodes[node].message.or_else(|| {
            let first = *self.nodes[node].children.first()?;
            self.nodes[first].message
        });
        message.map_or((DateTime::<Utc>::MIN_UTC, 0), |m| {
            (self.messages[m].sent, self.messages[m].seq)
        })
    }

    /// Siblings by date, then the threads by their first message's.
    fn sort(&mut self) {
        for node in 0..self.nodes.len() {
            if self.nodes[node].message.is_some() {
                let mut children = std::mem::take(&mut self.nodes[node].children);
                children.sort_by_key(|&c| self.date_key(c));
                self.nodes[node].children = children;
            }
        }
        // Dummies are roots only: their children are sorted once theirs are.
        for &root in &self.roots.clone() {
            if self.nodes[root].message.is_none() {
                let mut children = std::mem::take(&mut self.nodes[root].children);
                children.sort_by_key(|&c| self.date_key(c));
                self.nodes[root].children = children;
            }
        }
        let mut roots = std::mem::take(&mut self.roots);
        roots.sort_by_key(|&r| self.date_key(r));
        self.roots = roots;
    }

    /// `* THREAD (1 2 (3)(4))(5)`, written without recursion.
    fn render(&self) -> String {
        enum Step {
            Node(usize),
            Text(&'static str),
        }
        let mut out = String::from("* THREAD");
        if !self.roots.is_empty() {
            out.push(' ');
        }
        for &root in &self.roots {
            out.push('(');
            let mut steps = vec![Step::Node(root)];
            while let Some(step) = steps.pop() {
                let node = match step {
                    Step::Text(text) => {
                        out.push_str(text);
                        continue;
                    }
                    Step::Node(node) => &self.nodes[node],
                };
                if let Some(message) = node.message {
                    out.push_str(&self.messages[message].number.to_string());
                    match node.children.as_slice() {
                        [] => {}
                        [only] => {
                            out.push(' ');
                            steps.push(Step::Node(*only));
                        }
                        _ => out.push(' '),
                    }
                    if node.children.len() == 1 {
                        continue;
                    }
                }
                for &child in node.children.iter().rev() {
                    steps.push(Step::Text(")"));
                    steps.push(Step::Node(child));
                    steps.push(Step::Text("("));
                }
            }
            out.push(')');
        }
        out.push_str("\r\n");
        out
    }
}

/// ORDEREDSUBJECT: one thread per base subject, its first message the parent of the others.
fn ordered_subject(messages: &[Threadable]) -> Tree<'_> {
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&messages[a], &messages[b]);
        (&a.subject.0, a.sent, a.seq).cmp(&(&b.subject.0, b.sent, b.seq))
    });
    let mut tree = Tree::new(messages);
    let mut current: Option<(usize, &str)> = None;
    for m in order {
        let node = tree.add(Some(m));
        match current {
            Some((root, subject)) if subject == messages[m].subject.0 => tree.link(root, node),
            _ => {
                tree.roots.push(node);
                current = Some((node, &messages[m].subject.0));
            }
        }
    }
    tree
}

/// REFERENCES (RFC 5256 §3, steps 1 to 5; `Tree::sort` is step 6).
fn references(messages: &[Threadable]) -> Tree<'_> {
    let mut tree = Tree::new(messages);
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (m, message) in messages.iter().enumerate() {
        // (1A) A missing or repeated Message-ID is an ID of its own.
        let node = match message.message_id.as_deref() {
            Some(id) => match ids.get(id) {
                Some(&node) if tree.nodes[node].message.is_none() => node,
                Some(_) => tree.add(None),
                None => {
                    let node = tree.add(None);
                    ids.insert(id, node);
                    node
                }
            },
            None => tree.add(None),
        };
        tree.nodes[node].message = Some(m);
        // (1B) Each reference the parent of the next, unless linked already or a loop.
        let mut previous: Option<usize> = None;
        for reference in &message.references {
            let at = *ids
                .entry(reference.as_str())
                .or_insert_with(|| tree.add(None));
            if let Some(parent) = previous
                && parent != at
                && tree.nodes[at].parent.is_none()
                && !tree.is_ancestor(at, parent)
            {
                tree.link(parent, at);
            }
            previous = Some(at);
        }
        // (1C) The last reference is this message's parent, whatever was presumed before.
        tree.unlink(node);
        if let Some(parent) = previous
            && parent != node
            && !tree.is_ancestor(node, parent)
        {
            tree.link(parent, node);
        }
    }
    // (2) The root set; (4) dummies pruned.
    tree.roots = (0..tree.nodes.len())
        .filter(|&n| tree.nodes[n].parent.is_none())
        .collect();
    prune(&mut tree);
    gather_by_subject(&mut tree);
    tree
}

/// Step 4: a dummy without children goes; one with children gives them to its parent (at the
/// root, only if it has one).
fn prune(tree: &mut Tree<'_>) {
    // Children before their parents: the reverse of a pre-order walk.
    let mut order = Vec::with_capacity(tree.nodes.len());
    let mut stack = tree.roots.clone();
    while let Some(node) = stack.pop() {
        order.push(node);
        stack.extend(tree.nodes[node].children.iter().copied());
    }
    for &node in order.iter().rev() {
        let Some(parent) = tree.nodes[node].parent else {
            continue;
        };
        if tree.nodes[node].message.is_some() {
            continue;
        }
        let children = std::mem::take(&mut tree.nodes[node].children);
        for &child in &children {
            tree.nodes[child].parent = Some(parent);
        }
        let siblings = &mut tree.nodes[parent].children;
        if let Some(at) = siblings.iter().position(|&c| c == node) {
            siblings.splice(at..=at, children);
        }
        tree.nodes[node].parent = None;
    }
    let mut roots = Vec::with_capacity(tree.roots.len());
    for &root in &tree.roots {
        match (
            tree.nodes[root].message,
            tree.nodes[root].children.as_slice(),
        ) {
            (Some(_), _) => roots.push(root),
            (None, []) => {}
            (None, [only]) => {
                let only = *only;
                tree.nodes[only].parent = None;
                tree.nodes[root].children.clear();
                roots.push(only);
            }
            (None, _) => roots.push(root),
        }
    }
    tree.roots = roots;
}

/// Step 5: threads whose roots share a base subject are put together.
fn gather_by_subject(tree: &mut Tree<'_>) {
    let subject_of = |tree: &Tree<'_>, node: usize| -> Option<(String, bool)> {
        let message = tree.nodes[node]
            .message
            .or_else(|| tree.nodes[*tree.nodes[node].children.first()?].message)?;
        let subject = &tree.messages[message].subject;
        (!subject.0.is_empty()).then(|| subject.clone())
    };
    let is_dummy = |tree: &Tree<'_>, node: usize| tree.nodes[node].message.is_none();
    let mut table: HashMap<String, usize> = HashMap::new();
    for &root in &tree.roots {
        let Some((subject, reply)) = subject_of(tree, root) else {
            continue;
        };
        match table.get(&subject) {
            None => {
                table.insert(subject, root);
            }
            Some(&old) => {
                let old_reply = subject_of(tree, old).is_some_and(|(_, r)| r);
                if (is_dummy(tree, root) && !is_dummy(tree, old))
                    || (!is_dummy(tree, old) && old_reply && !reply)
                {
                    table.insert(subject, root);
                }
            }
        }
    }
    let mut gone = vec![false; tree.nodes.len()];
    let mut added_roots = Vec::new();
    for root in tree.roots.clone() {
        if gone[root] {
            continue;
        }
        let Some((subject, reply)) = subject_of(tree, root) else {
            continue;
        };
        let Some(&kept) = table.get(&subject) else {
            continue;
        };
        if kept == root {
            continue;
        }
        let kept_reply = subject_of(tree, kept).is_some_and(|(_, r)| r);
        match (is_dummy(tree, kept), is_dummy(tree, root)) {
            (true, true) => {
                for child in std::mem::take(&mut tree.nodes[root].children) {
                    tree.link(kept, child);
                }
                gone[root] = true;
            }
            (true, false) => {
                tree.link(kept, root);
                gone[root] = true;
            }
            (false, true) => {
                tree.link(root, kept);
                gone[kept] = true;
                table.insert(subject, root);
            }
            (false, false) if reply && !kept_reply => {
                tree.link(kept, root);
                gone[root] = true;
            }
            (false, false) => {
                let dummy = tree.add(None);
                gone.push(false);
                tree.link(dummy, kept);
                tree.link(dummy, root);
                gone[kept] = true;
                gone[root] = true;
                table.insert(subject, dummy);
                added_roots.push(dummy);
            }
        }
    }
    tree.roots.retain(|&r| !gone[r]);
    tree.roots.extend(added_roots);
}

impl Imap {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn thread<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        algorithm: &ThreadingAlgorithm<'static>,
        charset: &Charset<'static>,
        criteria: &Vec1<SearchKey<'static>>,
        by_uid: bool,
    ) -> Result<()> {
        let Some(selected) = &session.selected else {
            return no_or_bad(wire, tag, StatusKind::Bad, "Select a folder first").await;
        };
        let by_references = match algorithm {
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::Other(_) => {
                return no_or_bad(wire, tag, StatusKind::Bad, "Unknown threading algorithm").await;
            }
        };
        let found = match self
            .sortables(account, selected, charset, criteria.as_ref(), by_references)
            .await?
        {
            Ok(found) => found,
            Err(unordered) => return unordered.refuse(wire, tag).await,
        };
        let messages: Vec<Threadable> = found
            .into_iter()
            .map(|sortable| Threadable::new(sortable, by_uid))
            .collect();
        let mut tree = if by_references {
            references(&messages)
        } else {
            ordered_subject(&messages)
        };
        tree.sort();
        wire.send_raw(tree.render().as_bytes()).await?;
        ok(wire, tag, "THREAD done").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: u32, subject: &str, id: &str, references: &[&str]) -> Threadable {
        let sortable = Sortable {
            seq: n,
            uid: n,
            sent: DateTime::from_timestamp(i64::from(n), 0).unwrap_or_default(),
            message_id: (!id.is_empty()).then(|| id.to_owned()),
            references: references.iter().map(|r| (*r).to_owned()).collect(),
            ..Sortable::default()
        }
        .with_subject(subject);
        Threadable::new(sortable, false)
    }

    fn threads(tree: &mut Tree<'_>) -> String {
        tree.sort();
        tree.render()
    }

    #[test]
    fn references_replies_missing_parents_loops_and_subjects() {
        let messages = [
            message(1, "hello", "a", &[]),
            message(2, "Re: hello", "b", &["a"]),
            message(3, "Re: hello", "c", &["a"]),
            // Its parent is missing: the dummy with one child goes.
            message(4, "other", "d", &["gone"]),
            // A loop: each says the other is its parent.
            message(5, "loop", "e", &["f"]),
            message(6, "loop", "f", &["e"]),
            // A repeated Message-ID is an ID of its own.
            message(7, "Re: other", "d", &[]),
        ];
        let mut tree = references(&messages);
        // 5 is seen first as 6's presumed parent; 6 then may not become 5's (a loop).
        assert_eq!(threads(&mut tree), "* THREAD (1 (2)(3))(4 7)(6 5)\r\n");
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let messages = [
            message(1, "b", "", &[]),
            message(2, "a", "", &[]),
            message(3, "Re: b", "", &[]),
            message(4, "Fwd: a", "", &[]),
            message(5, "re: B", "", &[]),
        ];
        let mut tree = ordered_subject(&messages);
        assert_eq!(threads(&mut tree), "* THREAD (1 (3)(5))(2 4)\r\n");
    }

    #[test]
    fn a_hundred_thousand_long_chain_costs_neither_the_stack_nor_quadratic_time() {
        let ids: Vec<String> = (0..100_000).map(|n| format!("m{n}")).collect();
        let messages: Vec<Threadable> = (0..100_000u32)
            .map(|n| {
                let parent = n.checked_sub(1).map(|p| ids[p as usize].as_str());
                message(n + 1, "deep", &ids[n as usize], parent.as_slice())
            })
            .collect();
        let mut tree = references(&messages);
        let rendered = threads(&mut tree);
        // The loop check gives up past its depth: the chain is split, not lost.
        let mut numbers: Vec<u32> = rendered
            .split([' ', '(', ')', '\r', '\n'])
            .filter_map(|n| n.parse().ok())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=100_000).collect::<Vec<_>>());
    }
}
