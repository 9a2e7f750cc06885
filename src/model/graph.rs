//! The rollout graph (SPEC §2): a node per service, an edge per `after`, a barrier between
//! consecutive days, and the waves of each day.
//!
//! Barriers are kept implicit (the order of days) rather than as edges: a plan of 10,000
//! services would otherwise need an edge from every service of a day to every service of the
//! next. Every edge runs from an earlier-or-same day to a later-or-same day (the plan checks
//! that), so a cycle can only lie inside one day.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

/// One service as the graph sees it: its name, its day, and the names it comes after.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    pub name: &'a str,
    pub day: u32,
    pub after: &'a [String],
}

/// Days, waves and edges of a validated plan.
#[derive(Debug, Clone)]
pub struct RolloutGraph {
    /// Edge `a -> b`: `b` is after `a`.
    graph: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
    day_of: Vec<u32>,
    /// Waves of each day; each wave in file order.
    waves: BTreeMap<u32, Vec<Vec<String>>>,
}

impl RolloutGraph {
    /// Builds the graph of services whose `after` names are all known.
    ///
    /// Errors: a cycle, returned as the names along it (the first repeats implicitly).
    pub fn build(services: &[Node<'_>]) -> Result<RolloutGraph, Vec<String>> {
        let mut graph = DiGraph::with_capacity(services.len(), services.len());
        let mut index = HashMap::with_capacity(services.len());
        let mut day_of = Vec::with_capacity(services.len());
        for s in services {
            let n = graph.add_node(s.name.to_string());
            index.insert(s.name.to_string(), n);
            day_of.push(s.day);
        }
        for s in services {
            for dep in s.after {
                if let (Some(&a), Some(&b)) = (index.get(dep), index.get(s.name)) {
                    graph.update_edge(a, b, ());
                }
            }
        }
        let order = match toposort(&graph, None) {
            Ok(order) => order,
            Err(_) => return Err(find_cycle(&graph)),
        };
        // Longest-path layering inside each day: a service's wave is one more than the
        // latest wave among its same-day dependencies.
        let mut wave = vec![0usize; graph.node_count()];
        for &n in &order {
            let w = graph
                .edges_directed(n, petgraph::Direction::Incoming)
                .filter(|e| day_of[e.source().index()] == day_of[n.index()])
                .map(|e| wave[e.source().index()] + 1)
                .max()
                .unwrap_or(0);
            wave[n.index()] = w;
        }
        let mut waves: BTreeMap<u32, Vec<Vec<String>>> = BTreeMap::new();
        for n in graph.node_indices() {
            let day = waves.entry(day_of[n.index()]).or_default();
            let w = wave[n.index()];
            if day.len() <= w {
                day.resize_with(w + 1, Vec::new);
            }
            day[w].push(graph[n].clone());
        }
        Ok(RolloutGraph { graph, index, day_of, waves })
    }

    /// Days that hold services, ascending.
    pub fn days(&self) -> impl Iterator<Item = u32> + '_ {
        self.waves.keys().copied()
    }

    /// The waves of `day` (empty when the day has no services).
    pub fn waves(&self, day: u32) -> &[Vec<String>] {
        self.waves.get(&day).map_or(&[], Vec::as_slice)
    }

    /// The day of a service.
    pub fn day_of(&self, name: &str) -> Option<u32> {
        self.index.get(name).map(|n| self.day_of[n.index()])
    }

    /// Every `after` edge as `(dependency, dependent)`.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.graph.edge_references().map(|e| (self.graph[e.source()].as_str(), self.graph[e.target()].as_str()))
    }

    /// `(day, wave)` of a service, 1-based, which orders the whole rollout.
    pub fn position(&self, name: &str) -> Option<(u32, usize)> {
        let day = self.day_of(name)?;
        let w = self.waves(day).iter().position(|w| w.iter().any(|s| s == name))?;
        Some((day, w + 1))
    }

    /// The services `name` waits for directly.
    pub fn dependencies(&self, name: &str) -> Vec<&str> {
        match self.index.get(name) {
            Some(&n) => self
                .graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .map(|d| self.graph[d].as_str())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Everything `name` waits for, directly or through others.
    pub fn closure(&self, name: &str) -> Vec<&str> {
        let Some(&start) = self.index.get(name) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.graph.node_count()];
        let mut stack = vec![start];
        let mut out = Vec::new();
        while let Some(n) = stack.pop() {
            for d in self.graph.neighbors_directed(n, petgraph::Direction::Incoming) {
                if !seen[d.index()] {
                    seen[d.index()] = true;
                    out.push(self.graph[d].as_str());
                    stack.push(d);
                }
            }
        }
        out
    }

    /// Plain text: one block per day, one line per wave.
    pub fn render_text(&self, titles: &BTreeMap<u32, String>) -> String {
        let mut out = String::new();
        let mut first = true;
        for (&day, waves) in &self.waves {
            if !first {
                out.push_str("   │ barrier: every service above is healthy before any below starts\n");
            }
            first = false;
            match titles.get(&day) {
                Some(t) => writeln!(out, "day {day}: {t}").unwrap(),
                None => writeln!(out, "day {day}").unwrap(),
            }
            for (i, wave) in waves.iter().enumerate() {
                let names: Vec<String> = wave
                    .iter()
                    .map(|s| {
                        let deps = self.dependencies(s);
                        if deps.is_empty() { s.clone() } else { format!("{s} (after {})", deps.join(", ")) }
                    })
                    .collect();
                writeln!(out, "  wave {}: {}", i + 1, names.join(", ")).unwrap();
            }
        }
        out
    }

    /// Graphviz: a cluster per day, solid `after` edges, dashed barriers between days.
    pub fn render_dot(&self, titles: &BTreeMap<u32, String>) -> String {
        let mut out = String::from("digraph rollout {\n  compound=true;\n  rankdir=TB;\n  node [shape=box];\n");
        for (&day, waves) in &self.waves {
            let title = titles.get(&day).map_or(format!("day {day}"), |t| format!("day {day}: {t}"));
            writeln!(out, "  subgraph cluster_day{day} {{\n    label={};", dot_quote(&title)).unwrap();
            for (i, wave) in waves.iter().enumerate() {
                let names: Vec<String> = wave.iter().map(|s| dot_quote(s)).collect();
                writeln!(out, "    {{ rank=same; {} }} // wave {}", names.join("; "), i + 1).unwrap();
            }
            out.push_str("  }\n");
        }
        for (a, b) in self.edges() {
            writeln!(out, "  {} -> {};", dot_quote(a), dot_quote(b)).unwrap();
        }
        let days: Vec<u32> = self.days().collect();
        for pair in days.windows(2) {
            let (from, to) = (pair[0], pair[1]);
            let a = self.waves(from).last().and_then(|w| w.first());
            let b = self.waves(to).first().and_then(|w| w.first());
            if let (Some(a), Some(b)) = (a, b) {
                writeln!(
                    out,
                    "  {} -> {} [style=dashed, ltail=cluster_day{from}, lhead=cluster_day{to}, label=\"barrier\"];",
                    dot_quote(a),
                    dot_quote(b)
                )
                .unwrap();
            }
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart: a subgraph per day, `after` edges, dotted barriers.
    pub fn render_mermaid(&self, titles: &BTreeMap<u32, String>) -> String {
        let mut out = String::from("flowchart TB\n");
        let id = |s: &str| format!("n{}", self.index[s].index());
        for (&day, waves) in &self.waves {
            let title = titles.get(&day).map_or(format!("day {day}"), |t| format!("day {day}: {t}"));
            writeln!(out, "  subgraph day{day}[\"{}\"]", title.replace('"', "#quot;")).unwrap();
            for wave in waves {
                for s in wave {
                    writeln!(out, "    {}[\"{s}\"]", id(s)).unwrap();
                }
            }
            out.push_str("  end\n");
        }
        for (a, b) in self.edges() {
            writeln!(out, "  {} --> {}", id(a), id(b)).unwrap();
        }
        let days: Vec<u32> = self.days().collect();
        for pair in days.windows(2) {
            writeln!(out, "  day{} -. barrier .-> day{}", pair[0], pair[1]).unwrap();
        }
        out
    }
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One cycle of a graph known to have one, as node names in edge order.
fn find_cycle(graph: &DiGraph<String, ()>) -> Vec<String> {
    let scc = tarjan_scc(graph)
        .into_iter()
        .find(|c| c.len() > 1 || c.iter().any(|&n| graph.contains_edge(n, n)))
        .expect("toposort found a cycle, so a strongly connected component has one");
    let members: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
    let start = *scc.iter().min().expect("non-empty component");
    // Walk inside the component from the smallest node until we come back to a node on the
    // path; the part of the path from that node on is a cycle.
    let mut path = vec![start];
    let mut on_path: HashMap<NodeIndex, usize> = HashMap::from([(start, 0)]);
    let mut current = start;
    loop {
        let next = graph
            .neighbors(current)
            .filter(|n| members.contains(n))
            .min()
            .expect("every node of a strongly connected component has an edge inside it");
        if let Some(&at) = on_path.get(&next) {
            return path[at..].iter().map(|&n| graph[n].clone()).collect();
        }
        on_path.insert(next, path.len());
        path.push(next);
        current = next;
    }
}
