//! The Grafana dashboards: type-checked against @grafana/schema, provisionable, laid out.

use super::*;

#[test]
#[ignore = "needs Node.js and `npm ci --prefix tools/dashcheck`; .ci/run installs them and runs the ignored tests"]
fn dashboards_type_check_against_grafana_schema() {
    let modules = repo("tools/dashcheck/node_modules");
    assert!(
        modules.join("@grafana/schema").is_dir() && modules.join("typescript").is_dir(),
        "{} is missing: run `npm ci --prefix tools/dashcheck` (.ci/run does)",
        modules.display()
    );
    let out = run_ok(
        Command::new("node")
            .arg(repo("tools/dashcheck/check-dashboard.mjs"))
            .args(dashboard_files()),
        FIX_NODE,
    );
    assert_eq!(
        out.matches(": OK (@grafana/schema Dashboard)").count(),
        dashboard_files().len(),
        "{out}"
    );
}

#[test]
fn dashboards_are_provisionable_and_laid_out() {
    for (file, dashboard) in dashboards() {
        assert!(
            dashboard.get("__inputs").is_none(),
            "{file}: __inputs is for sharing"
        );
        assert!(
            dashboard["uid"].as_str().is_some_and(|uid| !uid.is_empty()),
            "{file}: a fixed uid keeps links stable"
        );
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        assert!(
            variables.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{file}: a Prometheus data source variable"
        );

        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("?");
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{file}: id of {title} repeats"
            );
            let grid = &panel["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|key| grid[key].as_u64().unwrap());
            assert!(x + w <= 24, "{file}: {title} is wider than the grid");
            for (other, [ox, oy, ow, oh]) in &boxes {
                let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
                assert!(!overlap, "{file}: {title} overlaps {other}");
            }
            boxes.push((title.to_owned(), [x, y, w, h]));
            if panel["type"] == "row" {
                continue;
            }
            assert!(
                panel["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{file}: {title} has no description"
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file}: {title} must use the data source variable"
            );
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{file}: {title} has no query");
            let mut refs = BTreeSet::new();
            for target in targets {
                assert_eq!(
                    target["datasource"]["uid"], "${datasource}",
                    "{file}: {title}"
                );
                assert!(
                    refs.insert(target["refId"].as_str().unwrap()),
                    "{file}: {title}"
                );
            }
        }
    }
}
