//! Config files for tests, written a table at a time.

/// The text of a `config.toml`. Each table begins after a blank line; [`ConfigBuilder::with`]
/// adds lines to the table begun last.
#[derive(Default)]
pub struct ConfigBuilder {
    text: String,
}

impl ConfigBuilder {
    pub fn new() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    fn table(mut self, header: &str, keys: &str) -> ConfigBuilder {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(header);
        self.text.push('\n');
        self.text.push_str(keys);
        self
    }

    /// `[defaults]` with these lines.
    pub fn defaults(self, lines: &str) -> ConfigBuilder {
        self.table("[defaults]", &format!("{lines}\n"))
    }

    /// A `[[feed]]` known by its URL alone (its name is then the URL).
    pub fn feed(self, url: &str) -> ConfigBuilder {
        self.table("[[feed]]", &format!("url = \"{url}\"\n"))
    }

    pub fn named_feed(self, name: &str, url: &str) -> ConfigBuilder {
        self.table("[[feed]]", &format!("name = \"{name}\"\nurl = \"{url}\"\n"))
    }

    /// A `[[rule]]` that alerts through the notifiers in `notify` (none: it only records).
    pub fn rule(self, name: &str, query: &str, notify: &[&str]) -> ConfigBuilder {
        let mut keys = format!("name = \"{name}\"\nquery = '{query}'\n");
        if !notify.is_empty() {
            let names: Vec<String> = notify.iter().map(|n| format!("\"{n}\"")).collect();
            keys.push_str(&format!("notify = [{}]\n", names.join(", ")));
        }
        self.table("[[rule]]", &keys)
    }

    /// A webhook `[[notifier]]` posting to `url`.
    pub fn webhook(self, name: &str, url: &str) -> ConfigBuilder {
        self.table(
            "[[notifier]]",
            &format!("name = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\n"),
        )
    }

    /// More lines in the table begun last.
    pub fn with(mut self, lines: &str) -> ConfigBuilder {
        self.text.push_str(lines);
        self.text.push('\n');
        self
    }

    pub fn build(self) -> String {
        self.text
    }
}
