//! ASCII sparklines, as Redis draws `LATENCY GRAPH` (its `sparkline.c`): each column is one
//! sample, drawn over a few rows with three heights per row (`_`, `o`, `#`, and `|` below a
//! column's top), then each sample's label written vertically beneath it.

/// Heights within one row, lowest first.
const LEVELS: [char; 3] = ['_', 'o', '#'];
/// Below the row holding a column's top.
const FILLED: char = '|';
/// Blank rows between the graph and the labels.
const LABEL_MARGIN: usize = 1;

/// One column: a value and the label written under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub value: f64,
    pub label: String,
}

/// Draws `points` `rows` rows high, in blocks of at most `columns` columns separated by an
/// empty line. Every block is scaled to the lowest and highest value of all the points.
pub fn render(points: &[Point], columns: usize, rows: usize) -> String {
    let Some(first) = points.first() else {
        return String::new();
    };
    let (min, max) = points.iter().fold((first.value, first.value), |(lo, hi), p| (lo.min(p.value), hi.max(p.value)));
    let scale = Scale { min, range: if max == min { 1.0 } else { max - min }, steps: LEVELS.len() * rows };
    let blocks: Vec<String> = points.chunks(columns.max(1)).map(|block| render_block(block, &scale, rows)).collect();
    blocks.join("\n")
}

struct Scale {
    min: f64,
    range: f64,
    steps: usize,
}

impl Scale {
    /// The height of `value` in steps, 0 to `steps - 1`. Truncated twice as Redis computes
    /// it (`(int)(relval * steps) / relmax`), so that the same samples draw the same graph.
    fn step(&self, value: f64) -> usize {
        let scaled = ((value - self.min) * self.steps as f64).trunc() / self.range;
        (scaled.max(0.0) as usize).min(self.steps - 1)
    }
}

fn render_block(points: &[Point], scale: &Scale, rows: usize) -> String {
    let mut out = String::new();
    for rows_below in (0..rows).rev() {
        out.extend(points.iter().map(|p| graph_char(scale.step(p.value), rows_below)));
        out.push('\n');
    }
    let label_rows = points.iter().map(|p| p.label.len()).max().unwrap_or(0);
    for _ in 0..LABEL_MARGIN {
        out.extend(std::iter::repeat_n(' ', points.len()));
        out.push('\n');
    }
    for index in 0..label_rows {
        out.extend(points.iter().map(|p| p.label.as_bytes().get(index).map_or(' ', |&b| char::from(b))));
        out.push('\n');
    }
    out
}

/// The character of a column `step` high in the row with `rows_below` rows under it.
fn graph_char(step: usize, rows_below: usize) -> char {
    match step.checked_sub(rows_below * LEVELS.len()) {
        None => ' ',
        Some(level) => LEVELS.get(level).copied().unwrap_or(FILLED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[(f64, &str)]) -> Vec<Point> {
        values.iter().map(|&(value, label)| Point { value, label: label.into() }).collect()
    }

    #[test]
    fn columns_rise_through_the_rows_and_labels_hang_below() {
        let graph = render(&points(&[(1.0, "3s"), (5.0, "12s"), (9.0, "1m")]), 80, 4);
        let expected = [
            "  #", //
            " _|", " ||", "_||", "   ", "311", "s2m", " s ", "",
        ];
        assert_eq!(graph, expected.join("\n"));
    }

    #[test]
    fn equal_values_sit_on_the_bottom_row() {
        assert_eq!(render(&points(&[(7.0, "1s"), (7.0, "1s")]), 80, 2), "  \n__\n  \n11\nss\n");
    }

    #[test]
    fn long_series_wrap_into_blocks_scaled_alike() {
        let graph = render(&points(&[(0.0, "a"), (3.0, "b"), (0.0, "c")]), 2, 1);
        assert_eq!(graph, "_#\n  \nab\n\n_\n \nc\n");
    }

    #[test]
    fn nothing_to_draw_is_empty() {
        assert_eq!(render(&[], 80, 4), "");
    }
}
