//! A trace's spans as a tree: pure, so that the shapes a client can send
//! (orphans, self-parents, cycles, duplicates) are unit-tested here.

use std::collections::HashMap;
use uuid::Uuid;

/// Each span's parent in the tree (its `parent_span_id` when that span is
/// in the trace), children, depth, and a depth-first order from the roots.
/// Roots are spans without a parent in the trace, and every member of a
/// parent cycle (a span that is its own parent, or A -> B -> A): so every
/// span appears exactly once in `order`.
#[derive(Debug)]
pub struct SpanTree {
    pub parent: Vec<Option<usize>>,
    pub children: Vec<Vec<usize>>,
    pub depth: Vec<usize>,
    pub order: Vec<usize>,
}

impl SpanTree {
    /// The tree of spans given as (span id, parent span id), by index.
    pub fn build(spans: impl ExactSizeIterator<Item = (Uuid, Option<Uuid>)> + Clone) -> Self {
        let n = spans.len();
        let ids: HashMap<Uuid, usize> = spans
            .clone()
            .enumerate()
            .map(|(i, (id, _))| (id, i))
            .collect();
        let mut parent: Vec<Option<usize>> = spans
            .map(|(_, p)| p.and_then(|p| ids.get(&p).copied()))
            .collect();
        // Break cycles: walk up from each span; a span met twice in one walk
        // is on a cycle, and every span of that cycle becomes a root.
        let mut state = vec![0u8; n]; // 0 unseen, 1 on the current walk, 2 done
        for start in 0..n {
            let mut walk = Vec::new();
            let mut at = Some(start);
            while let Some(i) = at {
                match state[i] {
                    2 => break,
                    1 => {
                        let from = walk.iter().position(|&w| w == i).expect("on the walk");
                        for &member in &walk[from..] {
                            parent[member] = None;
                        }
                        break;
                    }
                    _ => {
                        state[i] = 1;
                        walk.push(i);
                        at = parent[i];
                    }
                }
            }
            for i in walk {
                state[i] = 2;
            }
        }
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for (i, p) in parent.iter().enumerate() {
            match p {
                Some(p) => children[*p].push(i),
                None => roots.push(i),
            }
        }
        let mut depth = vec![0usize; n];
        let mut order = Vec::with_capacity(n);
        let mut stack: Vec<usize> = roots.into_iter().rev().collect();
        while let Some(i) = stack.pop() {
            order.push(i);
            for &k in children[i].iter().rev() {
                depth[k] = depth[i] + 1;
                stack.push(k);
            }
        }
        SpanTree {
            parent,
            children,
            depth,
            order,
        }
    }

    /// Each span's value plus its descendants' (children before parents).
    pub fn subtree_sums<T: Copy>(
        &self,
        values: impl Iterator<Item = T>,
        add: impl Fn(T, T) -> T,
    ) -> Vec<T> {
        let mut sums: Vec<T> = values.collect();
        for &i in self.order.iter().rev() {
            if let Some(p) = self.parent[i] {
                sums[p] = add(sums[p], sums[i]);
            }
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::SpanTree;
    use uuid::Uuid;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn tree(pairs: &[(u128, Option<u128>)]) -> SpanTree {
        let spans: Vec<(Uuid, Option<Uuid>)> =
            pairs.iter().map(|&(s, p)| (id(s), p.map(id))).collect();
        SpanTree::build(spans.into_iter())
    }

    #[test]
    fn depth_first_from_the_roots_with_children_in_order() {
        // 1 -> (2 -> 4), 3; 5 is an orphan (its parent is not in the trace).
        let t = tree(&[
            (1, None),
            (2, Some(1)),
            (3, Some(1)),
            (4, Some(2)),
            (5, Some(99)),
        ]);
        assert_eq!(t.order, vec![0, 1, 3, 2, 4]);
        assert_eq!(t.depth, vec![0, 1, 1, 2, 0]);
        assert_eq!(t.children[0], vec![1, 2]);
        assert_eq!(t.parent[4], None);
        let sums = t.subtree_sums([1, 10, 100, 1000, 5].into_iter(), |a, b| a + b);
        assert_eq!(sums, vec![1111, 1010, 100, 1000, 5]);
    }

    #[test]
    fn cycles_and_self_parents_become_roots_and_every_span_appears_once() {
        // 1 is its own parent; 2 <-> 3 form a cycle with 4 hanging off 3.
        let t = tree(&[(1, Some(1)), (2, Some(3)), (3, Some(2)), (4, Some(3))]);
        let mut seen = t.order.clone();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 3]);
        assert_eq!(t.parent, vec![None, None, None, Some(2)]);
        assert_eq!(t.depth[3], 1);
    }

    #[test]
    fn an_empty_trace_is_an_empty_tree() {
        let t = tree(&[]);
        assert!(t.order.is_empty());
    }
}
