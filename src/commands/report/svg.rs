//! The evidence pack's charts: a direction's measured speed over the window as inline SVG,
//! drawn here (no script, no external resource), with the contract's speeds as steps and
//! failed runs marked under the time axis.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::html::escape;
use crate::sample::mbit_per_second;
use crate::time::Timestamp;
use crate::zone::Zone;

/// The drawing's size in user units (it scales to the page's width).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 270.0;
/// The plot area.
const LEFT: f64 = 60.0;
const RIGHT: f64 = 710.0;
const TOP: f64 = 15.0;
const BOTTOM: f64 = 215.0;
/// Above this many points, each pixel column draws the range of its points instead of a line
/// through every point, so the SVG stays small.
pub(super) const MAX_LINE_POINTS: usize = 1500;
/// Columns the range is drawn in.
const COLUMNS: usize = 650;

/// A contract speed in force over part of the window.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Step {
    /// Which speed: `maximum`, `normally available`, `minimum`, `advertised`.
    pub label: &'static str,
    pub from: Timestamp,
    pub to: Timestamp,
    pub bytes_per_second: f64,
}

/// A failed run, and whether it counts against the line (`network`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Failure {
    pub time: Timestamp,
    pub network: bool,
}

/// The stroke of each contract speed, and its dash pattern.
fn style(label: &str) -> (&'static str, &'static str) {
    match label {
        "maximum" => ("#1b7f3b", "6 3"),
        "normally available" => ("#c77700", "6 3"),
        "minimum" => ("#b00020", "6 3"),
        _ => ("#555555", "2 3"),
    }
}

/// A chart titled `title` of `points` (time, bytes/s) over `from..to`, with `steps` and
/// `failures`; times on the axis in `zone`.
pub(super) fn chart(
    title: &str,
    from: Timestamp,
    to: Timestamp,
    zone: &Zone,
    points: &[(Timestamp, f64)],
    steps: &[Step],
    failures: &[Failure],
) -> String {
    let span = to.as_millis().saturating_sub(from.as_millis()).max(1) as f64;
    let x = |t: Timestamp| {
        LEFT + (t.as_millis().saturating_sub(from.as_millis()) as f64 / span).min(1.0)
            * (RIGHT - LEFT)
    };
    let highest = points
        .iter()
        .map(|(_, v)| *v)
        .chain(steps.iter().map(|s| s.bytes_per_second))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let (top, tick) = scale(mbit_per_second(highest));
    let y = |bytes_per_second: f64| {
        let share = (mbit_per_second(bytes_per_second) / top).clamp(0.0, 1.0);
        BOTTOM - share * (BOTTOM - TOP)
    };
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
        escape(title)
    );
    let _ = write!(svg, "<title>{}</title>", escape(title));
    // The grid and the speed axis.
    let mut value = 0.0;
    while value <= top + tick / 2.0 {
        let at = BOTTOM - value / top * (BOTTOM - TOP);
        let _ = write!(
            svg,
            r##"<path d="M{LEFT} {at:.1}H{RIGHT}" stroke="#dddddd" stroke-width="0.6"/><text x="{:.1}" y="{:.1}" font-size="9" text-anchor="end">{}</text>"##,
            LEFT - 4.0,
            at + 3.0,
            number(value)
        );
        value += tick;
    }
    let _ = write!(
        svg,
        r#"<text x="12" y="{:.1}" font-size="9" transform="rotate(-90 12 {:.1})" text-anchor="middle">Mbit/s</text>"#,
        (TOP + BOTTOM) / 2.0,
        (TOP + BOTTOM) / 2.0
    );
    // The time axis: six labels, dates for a window over three days, else hours.
    let format = if span > 3.0 * 86_400_000.0 {
        "%Y-%m-%d"
    } else {
        "%m-%d %H:%M"
    };
    for i in 0..6u64 {
        let millis = from.as_millis() + (span as u64) * i / 5;
        let at = Timestamp::from_millis(millis);
        let anchor = match i {
            0 => "start",
            5 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r##"<path d="M{:.1} {BOTTOM}v4" stroke="#000000" stroke-width="0.6"/><text x="{:.1}" y="{:.1}" font-size="9" text-anchor="{anchor}">{}</text>"##,
            x(at),
            x(at),
            BOTTOM + 45.0,
            zone.local(at).strftime(format)
        );
    }
    let _ = write!(
        svg,
        r##"<path d="M{LEFT} {TOP}V{BOTTOM}H{RIGHT}" fill="none" stroke="#000000" stroke-width="0.8"/>"##
    );
    // The measurements.
    if points.len() > MAX_LINE_POINTS {
        let mut columns: Vec<Option<(f64, f64)>> = vec![None; COLUMNS];
        for (time, value) in points.iter().filter(|(_, v)| v.is_finite()) {
            let share = (x(*time) - LEFT) / (RIGHT - LEFT);
            let column = ((share * COLUMNS as f64) as usize).min(COLUMNS - 1);
            if let Some(slot) = columns.get_mut(column) {
                *slot = Some(slot.map_or((*value, *value), |(lo, hi)| {
                    (lo.min(*value), hi.max(*value))
                }));
            }
        }
        let mut d = String::new();
        for (column, range) in columns.iter().enumerate() {
            if let Some((lo, hi)) = range {
                let at = LEFT + (column as f64 + 0.5) / COLUMNS as f64 * (RIGHT - LEFT);
                let _ = write!(d, "M{at:.1} {:.1}V{:.1}", y(*lo) + 0.5, y(*hi) - 0.5);
            }
        }
        let _ = write!(
            svg,
            r##"<path class="measured" d="{d}" stroke="#1f4e9a" stroke-width="1"/>"##
        );
    } else if !points.is_empty() {
        let mut line = String::new();
        for (time, value) in points.iter().filter(|(_, v)| v.is_finite()) {
            let _ = write!(line, "{:.1},{:.1} ", x(*time), y(*value));
        }
        let _ = write!(
            svg,
            r##"<polyline class="measured" points="{}" fill="none" stroke="#1f4e9a" stroke-width="1"/>"##,
            line.trim_end()
        );
        if points.len() <= 300 {
            for (time, value) in points.iter().filter(|(_, v)| v.is_finite()) {
                let _ = write!(
                    svg,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="#1f4e9a"/>"##,
                    x(*time),
                    y(*value)
                );
            }
        }
    }
    // The contract's speeds as steps over the measurements, one segment per version in force.
    for step in steps {
        let (stroke, dash) = style(step.label);
        let level = y(step.bytes_per_second);
        let _ = write!(
            svg,
            r#"<path class="plan" d="M{:.1} {level:.1}H{:.1}" fill="none" stroke="{stroke}" stroke-width="1.4" stroke-dasharray="{dash}"/>"#,
            x(step.from),
            x(step.to)
        );
    }
    // Failed runs: a tick under the axis, red when it counts against the line; one per pixel
    // column and kind.
    let ticks: BTreeSet<(u32, bool)> = failures
        .iter()
        .map(|f| ((x(f.time) * 2.0) as u32, f.network))
        .collect();
    for network in [false, true] {
        let mut d = String::new();
        for (half_pixel, _) in ticks.iter().filter(|(_, n)| *n == network) {
            let _ = write!(
                d,
                "M{:.1} {:.1}v10",
                f64::from(*half_pixel) / 2.0,
                BOTTOM + 18.0
            );
        }
        if !d.is_empty() {
            let (class, stroke) = if network {
                ("failure network", "#d00000")
            } else {
                ("failure", "#888888")
            };
            let _ = write!(
                svg,
                r#"<path class="{class}" d="{d}" stroke="{stroke}" stroke-width="1.2"/>"#
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="8" text-anchor="end">failed runs</text>"#,
        LEFT - 4.0,
        BOTTOM + 27.0
    );
    svg.push_str("</svg>");
    svg
}

/// The top of the speed axis and its tick spacing (Mbit/s) for a highest value: ticks of 1,
/// 2 or 5 × 10ⁿ, three to six of them.
fn scale(highest: f64) -> (f64, f64) {
    let highest = if highest.is_finite() && highest > 0.0 {
        highest * 1.05
    } else {
        1.0
    };
    let rough = highest / 6.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let tick = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|t| *t >= rough)
        .unwrap_or(10.0 * magnitude);
    ((highest / tick).ceil() * tick, tick)
}

/// A tick value without needless decimals.
fn number(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The legend under a chart, as HTML.
pub(super) fn legend(steps: &[Step]) -> String {
    let mut labels: Vec<&str> = steps.iter().map(|s| s.label).collect();
    labels.dedup();
    labels.sort_unstable();
    labels.dedup();
    let mut html = String::from(
        r#"<p class="legend"><span class="key" style="border-color:#1f4e9a"></span>measured"#,
    );
    for label in labels {
        let (stroke, _) = style(label);
        let _ = write!(
            html,
            r#" <span class="key dashed" style="border-color:{stroke}"></span>{} (contract)"#,
            escape(label)
        );
    }
    html.push_str(
        r#" <span class="tick" style="border-color:#d00000"></span>failed: network (counted against the line) <span class="tick" style="border-color:#888888"></span>failed: other</p>"#,
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_795_478_400_000;

    fn at(minutes: u64) -> Timestamp {
        Timestamp::from_millis(T0 + minutes * 60_000)
    }

    #[test]
    fn a_chart_draws_each_point_the_steps_and_the_failures() {
        let points: Vec<(Timestamp, f64)> = (0..10)
            .map(|i| (at(i * 30), 12_500_000.0 + i as f64))
            .collect();
        let steps = [Step {
            label: "minimum",
            from: at(0),
            to: at(600),
            bytes_per_second: 6_250_000.0,
        }];
        let failures = [
            Failure {
                time: at(45),
                network: true,
            },
            Failure {
                time: at(75),
                network: false,
            },
        ];
        let svg = chart(
            "Download <&>",
            at(0),
            at(600),
            &Zone::utc(),
            &points,
            &steps,
            &failures,
        );
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"), "{svg}");
        assert!(
            svg.contains("<title>Download &lt;&amp;&gt;</title>"),
            "{svg}"
        );
        let line = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(line.split(' ').count(), 10, "{line}");
        assert_eq!(svg.matches("<circle").count(), 10);
        // The minimum's step starts at the left edge.
        assert!(svg.contains(r#"class="plan" d="M60.0 "#), "{svg}");
        assert!(svg.contains("class=\"failure network\""), "{svg}");
        assert!(svg.contains("class=\"failure\""), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(!svg.contains("href") && !svg.contains("<script"), "{svg}");
        assert!(
            !svg.contains("http"),
            "inline SVG in HTML needs no namespace URL: {svg}"
        );
    }

    #[test]
    fn many_points_are_drawn_as_ranges_per_column() {
        let points: Vec<(Timestamp, f64)> = (0..5000)
            .map(|i| (at(i), 1e6 + (i % 7) as f64 * 1e5))
            .collect();
        let svg = chart("Upload", at(0), at(5000), &Zone::utc(), &points, &[], &[]);
        assert!(!svg.contains("<polyline"), "a line through 5000 points");
        let ranges = svg.split("class=\"measured\" d=\"").nth(1).unwrap();
        let ranges = ranges.split('"').next().unwrap();
        assert_eq!(ranges.matches('M').count(), COLUMNS);
        assert!(svg.len() < 40_000, "{} bytes", svg.len());
    }

    #[test]
    fn an_empty_chart_still_has_axes() {
        let svg = chart("Download", at(0), at(60), &Zone::utc(), &[], &[], &[]);
        assert!(svg.contains(">Mbit/s</text>"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn the_scale_is_round() {
        assert_eq!(scale(100.0), (120.0, 20.0));
        let (top, tick) = scale(0.0);
        assert!(
            (top - 1.0).abs() < 1e-9 && (tick - 0.2).abs() < 1e-9,
            "{top} {tick}"
        );
        assert_eq!(scale(930.0), (1000.0, 200.0));
    }
}
