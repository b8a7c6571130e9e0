//! The stomp-jenkins daemon's part of a seed config as `[[action]]` tables
//! that make the HTTP requests it made: `GET {jenkins-url}/job/{job}/build?token={ticket}`
//! for each message of a configured repo (and SVN project), unless the refname
//! matches the entry's `ignore_refs`, then the report line on `report-topic`.
//! `hookbus config import-legacy` reads the file and calls
//! [`LegacyJenkins::read`].
//!
//! Two formats: `jenkins-projects` (repo → `{project, ticket, ignore_refs}`,
//! or repo → SVN project → the same) and the older top-level `REPO: TICKET`
//! entries, where the job is named like the repo. Job names are written into
//! the URL template literally (they are already URL-encoded in the YAML); the
//! ticket becomes the step's `token`, percent-encoded where `{token}` stands,
//! which changes nothing for tickets of letters, digits and `-._~`.

use crate::text::toml_string;
use std::fmt::Write;
use yaml_rust2::Yaml;

/// One Jenkins job the seed started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JenkinsJob {
    /// The repository name messages carry (`repo:`).
    pub repo: String,
    /// The SVN project (`Project:` body line) selecting this job, if any.
    pub svn_project: Option<String>,
    /// The Jenkins job name, as it goes into the URL.
    pub job: String,
    /// The build token.
    pub ticket: String,
    /// `ignore_refs` as written; `None` when the key was absent.
    pub ignore_refs: Option<String>,
}

/// `jenkins-url` and the jobs, from either format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyJenkins {
    /// `jenkins-url`.
    pub url: String,
    /// The jobs, in the file's order.
    pub jobs: Vec<JenkinsJob>,
    /// True for the older `REPO: TICKET` format.
    pub old_format: bool,
    /// Entries that could not be converted, with the reason.
    pub skipped: Vec<String>,
}

impl LegacyJenkins {
    /// Reads the jobs: from `projects` (`jenkins-projects`) when given, else
    /// from the scalar entries of `others` (the top-level keys no other part
    /// claimed). Returns the keys of `others` left unconverted.
    pub fn read(
        url: &str,
        projects: Option<&Yaml>,
        others: &[(String, Yaml)],
        scalar: impl Fn(&Yaml) -> String,
    ) -> (LegacyJenkins, Vec<String>) {
        let mut jenkins = LegacyJenkins {
            url: url.to_string(),
            old_format: projects.is_none(),
            ..LegacyJenkins::default()
        };
        let Some(projects) = projects else {
            let mut rest = Vec::new();
            for (repo, value) in others {
                match value {
                    Yaml::String(_) | Yaml::Integer(_) | Yaml::Real(_) => {
                        jenkins.jobs.push(JenkinsJob {
                            repo: repo.clone(),
                            svn_project: None,
                            job: repo.clone(),
                            ticket: scalar(value),
                            ignore_refs: None,
                        })
                    }
                    _ => rest.push(repo.clone()),
                }
            }
            return (jenkins, rest);
        };
        let Yaml::Hash(repos) = projects else {
            jenkins
                .skipped
                .push("jenkins-projects is not a mapping of repositories".to_string());
            return (jenkins, others.iter().map(|(key, _)| key.clone()).collect());
        };
        for (repo, entry) in repos {
            let repo = scalar(repo);
            let field = |map: &Yaml, key: &str| match map {
                // `key:` with no value is nil to Ruby, as if absent
                Yaml::Hash(fields) => fields
                    .get(&Yaml::String(key.to_string()))
                    .filter(|value| !matches!(value, Yaml::Null))
                    .map(&scalar),
                _ => None,
            };
            let single = ["project", "ticket"]
                .iter()
                .any(|key| field(entry, key).is_some());
            let entries: Vec<(Option<String>, &Yaml)> = match entry {
                Yaml::Hash(_) if single => vec![(None, entry)],
                Yaml::Hash(svn) => svn.iter().map(|(p, e)| (Some(scalar(p)), e)).collect(),
                _ => vec![(None, entry)],
            };
            for (svn_project, entry) in entries {
                let what = match &svn_project {
                    Some(project) => format!("{repo:?} / SVN project {project:?}"),
                    None => format!("{repo:?}"),
                };
                let (Some(job), Some(ticket)) = (field(entry, "project"), field(entry, "ticket"))
                else {
                    jenkins.skipped.push(format!(
                        "jenkins-projects entry {what}: it needs project and ticket"
                    ));
                    continue;
                };
                let ignore_refs = field(entry, "ignore_refs");
                if let Some(Err(error)) = ignore_refs.as_deref().map(crate::pattern::compile) {
                    jenkins.skipped.push(format!(
                        "jenkins-projects entry {what}: ignore_refs is not a regular expression hookbus reads ({}); rewrite it and add the action by hand",
                        error.to_string().lines().last().unwrap_or_default()
                    ));
                    continue;
                }
                jenkins.jobs.push(JenkinsJob {
                    repo: repo.clone(),
                    svn_project,
                    job,
                    ticket,
                    ignore_refs,
                });
            }
        }
        (jenkins, others.iter().map(|(key, _)| key.clone()).collect())
    }

    /// One `[[action]]` per job, listening on `listen` (a destination) and
    /// reporting on `report`; skipped entries become comments.
    pub fn to_toml(&self, listen: &str, report: Option<&str>) -> String {
        let mut out = String::from(
            "# stomp-jenkins: one [[action]] per Jenkins job, GET {jenkins-url}/job/JOB/build?token=TICKET\n\
             # for each message of its repo (and SVN project) unless ignore_refs finds the refname.\n\
             # Unlike the seed, hookbus retries connection errors and 5xx twice (retries = 0 for\n\
             # one attempt) and publishes the report line only after a 2xx answer (the seed did\n\
             # after any answer). The tickets are secrets: keep this file mode 0600, or move\n\
             # each into a file named by token_file.\n\n",
        );
        let mut names = Vec::new();
        for job in &self.jobs {
            let name = unique_name(&mut names, job);
            out.push_str(&self.action(job, &name, listen, report));
        }
        for skipped in &self.skipped {
            let _ = writeln!(out, "# not converted: {skipped}\n");
        }
        out
    }

    fn action(&self, job: &JenkinsJob, name: &str, listen: &str, report: Option<&str>) -> String {
        let mut out = String::new();
        let source = match (&job.svn_project, self.old_format) {
            (Some(project), _) => format!("jenkins-projects: {} / {project}", job.repo),
            (None, false) => format!("jenkins-projects: {}", job.repo),
            (None, true) => format!("{}: TICKET", job.repo),
        };
        let _ = writeln!(out, "# {source} → Jenkins job {}", job.job);
        if !self.old_format && job.ignore_refs.is_none() {
            out.push_str(
                "# Note: the seed never started this job. Without ignore_refs its check\n\
                 # matched an empty regular expression, which skips every message;\n\
                 # hookbus starts it. Delete this action to keep the old behaviour.\n",
            );
        }
        let _ = writeln!(
            out,
            "[[action]]\nname = {}\n[action.match]",
            toml_string(name)
        );
        let _ = writeln!(out, "destinations = [{}]", toml_string(listen));
        let _ = writeln!(
            out,
            "repo = [{}]",
            toml_string(&glob::Pattern::escape(&job.repo))
        );
        match &job.svn_project {
            Some(project) => {
                let _ = writeln!(
                    out,
                    "project = [{}]",
                    toml_string(&glob::Pattern::escape(project))
                );
            }
            // The seed looked a message with a `Project:` line up among SVN projects only.
            None if !self.old_format => out.push_str("project = [\"\"]  # no SVN project\n"),
            None => {}
        }
        if let Some(ignore) = job.ignore_refs.as_deref().filter(|text| !text.is_empty()) {
            let _ = writeln!(out, "ignore_refs = {}", toml_string(ignore));
        }
        let url = format!("{}/job/{}/build?token=", self.url, job.job);
        let _ = writeln!(
            out,
            "[[action.step]]\nkind = \"http\"\nurl = {}\ntoken = {}",
            toml_string(&format!("{}{{token}}", braces(&url))),
            toml_string(&job.ticket)
        );
        if crate::action::template::percent_encode(&job.ticket) != job.ticket {
            out.push_str(
                "# the ticket has characters hookbus percent-encodes in the URL (the seed sent them raw)\n",
            );
        }
        if let Some(report) = report {
            let line = match self.old_format {
                true => "Requested Jenkins build: {header.subject}".to_string(),
                false => format!(
                    "Requested Jenkins build: {{header.subject}} / {}",
                    braces(&job.job.replace("%20", "_"))
                ),
            };
            let _ = writeln!(
                out,
                "[action.step.on_success]\nkind = \"publish\"\ndestination = {}\n\
                 headers = {{ subject = \"Talking to eventbot\" }}\nbody = {}",
                toml_string(report),
                toml_string(&line)
            );
        }
        out.push('\n');
        out
    }
}

/// `jenkins-REPO[-PROJECT]` in the characters action names allow, unique.
fn unique_name(taken: &mut Vec<String>, job: &JenkinsJob) -> String {
    let mut base = format!("jenkins-{}", job.repo);
    if let Some(project) = &job.svn_project {
        base = format!("{base}-{project}");
    }
    let base: String = base
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "-_.".contains(c) {
            true => c,
            false => '_',
        })
        .take(90)
        .collect();
    let mut name = base.clone();
    for number in 2.. {
        if !taken.contains(&name) {
            break;
        }
        name = format!("{base}-{number}");
    }
    taken.push(name.clone());
    name
}

/// Literal text in a template: braces doubled.
fn braces(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

#[cfg(test)]
mod tests {
    use crate::legacy::LegacyConfig;

    /// The converted actions of a seed file, loaded as hookbus loads a config.
    fn convert(yaml: &str) -> (String, crate::config::Config) {
        let toml = LegacyConfig::parse(yaml)
            .unwrap()
            .to_toml("stomp-jenkins.yaml");
        let config =
            crate::config::Config::parse(&toml).unwrap_or_else(|e| panic!("{e:#}\n{toml}"));
        (toml, config)
    }

    #[test]
    fn jenkins_projects_become_one_action_per_job() {
        let seed = include_str!("../../tests/fixtures/legacy/stomp-jenkins.yaml");
        let (toml, config) = convert(seed);
        let listen = config.listen.expect("[listen]");
        assert_eq!(listen.subscribe, ["/topic/acme.git.commits"]);
        assert_eq!(listen.report, None, "report-topic is the publish step's");
        let names: Vec<&str> = config.actions.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "jenkins-single-app",
                "jenkins-legacy-svn-awful-project",
                "jenkins-legacy-svn-time-sink",
                "jenkins-web_1__.site"
            ]
        );
        let single = &config.actions[0];
        assert_eq!(single.matches.repo, ["single-app"]);
        assert_eq!(single.matches.project, [""]);
        assert_eq!(
            single.matches.ignore_refs.as_deref(),
            Some(r"refs\/tags\/jenkins-(?:.*)")
        );
        let step = &single.steps[0];
        assert_eq!(
            step.url.as_deref(),
            Some("http://jenkins.example.net:8080/job/app-build/build?token={token}")
        );
        assert_eq!(step.token.as_ref().unwrap().expose(), "S1NGLE_KEY");
        let report = step.on_success.as_ref().expect("on_success");
        assert_eq!(
            report.destination.as_deref(),
            Some("/topic/acme.events.jenkins")
        );
        assert_eq!(report.headers["subject"], "Talking to eventbot");
        assert_eq!(
            report.body.as_deref(),
            Some("Requested Jenkins build: {header.subject} / app-build")
        );
        let spaces = &config.actions[2];
        assert_eq!(spaces.matches.project, ["time-sink"]);
        assert_eq!(
            spaces.steps[0].url.as_deref(),
            Some("http://jenkins.example.net:8080/job/name%20containing%20spaces/build?token={token}")
        );
        assert!(spaces.steps[0]
            .on_success
            .as_ref()
            .unwrap()
            .body
            .as_deref()
            .unwrap()
            .ends_with("/ name_containing_spaces"));
        let odd = &config.actions[3];
        let glob = glob::Pattern::new(&odd.matches.repo[0]).unwrap();
        assert!(glob.matches("web[1]*.site") && !glob.matches("web1x.site"));
        assert_eq!(
            odd.steps[0].url.as_deref(),
            Some("http://jenkins.example.net:8080/job/web{{1}}/build?token={token}")
        );
        assert!(toml.contains("the seed never started this job"), "{toml}");
        assert!(
            toml.contains("not converted: jenkins-projects entry \"broken\""),
            "{toml}"
        );
        assert!(toml.contains("hookbus percent-encodes"), "{toml}");
        assert!(!toml.contains("jenkinspw"), "the broker passcode moved out");
    }

    #[test]
    fn an_empty_ignore_refs_filters_nothing_and_a_null_one_is_noted() {
        let (toml, config) = convert(
            "listen-topic: c\njenkins-url: http://j\njenkins-projects:\n  \
             a: {project: a, ticket: t, ignore_refs: ''}\n  b: {project: b, ticket: t, ignore_refs: }\n",
        );
        assert!(config
            .actions
            .iter()
            .all(|a| a.matches.ignore_refs.is_none()));
        assert_eq!(toml.matches("the seed never started this job").count(), 1);
        assert!(toml.find("never started") > toml.find("name = \"jenkins-a\""));
    }

    #[test]
    fn the_older_format_uses_top_level_tickets_and_names_what_it_left() {
        let (toml, config) = convert(
            "rserver: stomp://h:61613\nlisten-topic: git.commits\nreport-topic: events\n\
             jenkins-url: https://ci.example/\npuppet-environments: MagicWord\nbuild-42: 1234\n\
             extra-list: [a, b]\n",
        );
        let urls: Vec<(&str, &str, &str)> = config
            .actions
            .iter()
            .map(|a| {
                let step = &a.steps[0];
                (
                    a.matches.repo[0].as_str(),
                    step.url.as_deref().unwrap(),
                    step.token.as_ref().unwrap().expose(),
                )
            })
            .collect();
        assert_eq!(
            urls,
            [
                (
                    "puppet-environments",
                    "https://ci.example//job/puppet-environments/build?token={token}",
                    "MagicWord"
                ),
                (
                    "build-42",
                    "https://ci.example//job/build-42/build?token={token}",
                    "1234"
                ),
            ]
        );
        assert!(config.actions[0].matches.project.is_empty());
        assert_eq!(
            config.actions[0].steps[0]
                .on_success
                .as_ref()
                .unwrap()
                .body
                .as_deref(),
            Some("Requested Jenkins build: {header.subject}")
        );
        assert!(toml.contains("no hookbus equivalent: extra-list"), "{toml}");
        assert!(!toml.contains("never started"), "{toml}");
    }
}
