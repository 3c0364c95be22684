//! Realistic-looking mail for the demo: people, mailing lists, newsletters, invoices and bots,
//! each kind shaped so that one rule of `rules.example.yaml` (or none) applies to it.

/// One generated message and what the demo tells about it.
#[derive(Clone, Debug)]
pub struct Letter {
    /// The display name, else the address: what a mail client shows as the sender.
    pub sender: String,
    pub subject: String,
    /// With angle brackets, as in the header (and in imapsort's `message_id` log field).
    pub message_id: String,
    /// The message (CRLF line ends).
    pub bytes: Vec<u8>,
}

/// Makes [`Letter`]s; seeded, so every demo run tells the same story.
pub struct MailGen {
    rng: fastrand::Rng,
    /// Makes Message-IDs unique.
    n: usize,
}

/// People who write to you; mail from them stays in the INBOX (the boss's gets flagged).
const PEOPLE: &[(&str, &str)] = &[
    ("Alice Martin", "alice@friends.example"),
    ("Bob Okafor", "bob@friends.example"),
    ("Chiara Rossi", "chiara@family.example"),
    ("The Boss", "boss@work.example"),
    ("Dmitri Ivanov", "dmitri@work.example"),
];
const PERSONAL: &[&str] = &[
    "Lunch on Friday?",
    "Photos from the weekend",
    "Re: the plan for next week",
    "Quick question",
    "Call me when you can",
    "Notes from today's meeting",
    "Re: Re: holiday dates",
    "Can you review my draft?",
    "Dinner at ours on Saturday",
    "Fwd: the quarterly numbers",
];
/// People who post to mailing lists.
const POSTERS: &[(&str, &str)] = &[
    ("Ana Lima", "ana@lima.example"),
    ("Kenji Sato", "kenji@sato.example"),
    ("Priya Nair", "priya@nair.example"),
    ("Tom Berg", "tom@berg.example"),
    ("Lena Vogel", "lena@vogel.example"),
];
/// (List-Id, topics). The example rules file each under `Lists/<List-Id>`, announcements
/// under `Lists/announce/<year>`.
const LISTS: &[(&str, &[&str])] = &[
    (
        "announce.example.org",
        &[
            "Release 2.0 is out",
            "Security update 1.9.3",
            "Call for talks",
        ],
    ),
    (
        "rust-users",
        &[
            "Borrow checker and async closures",
            "Which error crate in 2026?",
            "Re: trait objects vs generics",
            "Slow compile times on CI",
        ],
    ),
    (
        "debian-devel",
        &[
            "Proposal: new init defaults",
            "Re: usrmerge follow-up",
            "Bug squashing party in Lyon",
        ],
    ),
    (
        "pgsql-general",
        &[
            "Vacuum on big tables",
            "Re: logical replication lag",
            "Index not used with LIKE",
        ],
    ),
];
/// Senders of newsletters (List-Unsubscribe, no List-Id), with their issues.
const NEWSLETTERS: &[(&str, &str, &[&str])] = &[
    (
        "Weekly Tech Digest",
        "digest@news.example",
        &[
            "This week: 10 things about IMAP",
            "Is email dead? No.",
            "The state of Rust",
        ],
    ),
    (
        "Garden Club",
        "hello@garden.example",
        &[
            "Spring planting guide",
            "Tomatoes: the full story",
            "Our autumn fair",
        ],
    ),
    (
        "Travel Deals",
        "deals@travel.example",
        &[
            "Last-minute flights to Lisbon",
            "48 hours in Kyoto",
            "Trains across the Alps",
        ],
    ),
];
/// Machines that send notifications.
const BOTS: &[(&str, &str, &[&str])] = &[
    (
        "GitHub",
        "notifications@github.com",
        &[
            "[imapsort] CI passed on main",
            "[imapsort] New issue: IDLE drops",
            "[imapsort] PR #42 merged",
        ],
    ),
    (
        "Monitoring",
        "noreply@monitor.example",
        &[
            "ALERT resolved: disk usage",
            "ALERT: certificate expires in 14 days",
        ],
    ),
    (
        "Calendar",
        "no-reply@calendar.example",
        &[
            "Reminder: standup at 09:30",
            "Invitation: planning, Thursday",
        ],
    ),
];

impl MailGen {
    pub fn new(seed: u64) -> MailGen {
        MailGen {
            rng: fastrand::Rng::with_seed(seed),
            n: 0,
        }
    }

    /// How many messages to deliver next (1 to 3).
    pub fn batch_size(&mut self) -> usize {
        1 + self.rng.usize(0..3)
    }

    pub fn next_letter(&mut self) -> Letter {
        self.n += 1;
        let n = self.n;
        let mut extra = String::new();
        let (name, from, subject) = match self.rng.u8(0..10) {
            0..=2 => {
                let (name, addr) = self.pick(PEOPLE);
                (name, addr, self.pick(PERSONAL).to_string())
            }
            3..=5 => {
                let (id, topics) = self.pick(LISTS);
                let tag = id.split('.').next().unwrap_or(id);
                extra.push_str(&format!("List-Id: {tag} <{id}>\r\nPrecedence: list\r\n"));
                let (name, addr) = self.pick(POSTERS);
                (name, addr, format!("[{tag}] {}", self.pick(topics)))
            }
            6 | 7 => {
                let (name, addr, issues) = self.pick(NEWSLETTERS);
                let domain = addr.split('@').nth(1).unwrap_or("news.example");
                extra.push_str(&format!(
                    "List-Unsubscribe: <mailto:unsubscribe@{domain}>\r\n"
                ));
                (name, addr, self.pick(issues).to_string())
            }
            8 => {
                let number = 1000 + self.rng.u32(0..9000);
                (
                    "Billing",
                    "invoices@billing.example.net",
                    format!("Your invoice #{number}"),
                )
            }
            _ => {
                let (name, addr, subjects) = self.pick(BOTS);
                extra.push_str("Auto-Submitted: auto-generated\r\n");
                (name, addr, self.pick(subjects).to_string())
            }
        };
        let message_id = format!("<demo.{n}.{:08x}@imapsort.example>", self.rng.u32(..));
        let date = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000");
        let text = format!(
            "From: {name} <{from}>\r\nTo: You <user@example.com>\r\nSubject: {subject}\r\n\
             Date: {date}\r\nMessage-ID: {message_id}\r\n{extra}\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Hello,\r\n\r\nthis is demo message {n}.\r\n"
        );
        Letter {
            sender: name.to_string(),
            subject,
            message_id,
            bytes: text.into_bytes(),
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.usize(..items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_mail_is_varied_and_unique() {
        let mut g = MailGen::new(1);
        let letters: Vec<Letter> = (0..200).map(|_| g.next_letter()).collect();
        let texts: Vec<String> = letters
            .iter()
            .map(|l| String::from_utf8(l.bytes.clone()).unwrap())
            .collect();
        assert!(texts.iter().any(|m| m.contains("List-Id:")));
        assert!(texts.iter().any(|m| m.contains("List-Unsubscribe:")));
        assert!(texts.iter().any(|m| m.contains("invoice #")));
        assert!(texts.iter().any(|m| m.contains("Auto-Submitted:")));
        let ids: std::collections::HashSet<&str> =
            letters.iter().map(|l| l.message_id.as_str()).collect();
        assert_eq!(ids.len(), 200);
        for (l, text) in letters.iter().zip(&texts) {
            assert!(text.contains(&format!("Message-ID: {}\r\n", l.message_id)));
            assert!(text.contains(&format!("Subject: {}\r\n", l.subject)));
        }
    }
}
