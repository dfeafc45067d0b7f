//! Whose environment an event is about, and how to read it. The function runs in the VPC
//! owner's account; environments live there or in participant accounts that share the
//! owner's subnets (AWS RAM). MWAA has no resource policies, so a participant's environment
//! is read through a role the participant lends (`infra/participant.yaml`), assumed with the
//! deployment's ExternalId. An account that is neither is refused before any call.

use std::collections::BTreeSet;

use common::Error;

/// The accounts this deployment serves, from its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Accounts {
    /// The account the function runs in: the VPC owner.
    pub owner: String,
    pub participants: BTreeSet<String>,
    /// `arn:PARTITION:iam::` and `:role/NAME` around a participant's account id.
    role_arn_prefix: String,
    role_name: String,
    pub external_id: String,
}

/// Through whom an account's environments are read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reader {
    /// The function's own credentials (the owner's account).
    Own { account: String },
    /// A participant's role, assumed with the ExternalId.
    Participant { account: String, role_arn: String },
}

impl Reader {
    pub fn account(&self) -> &str {
        match self {
            Reader::Own { account } | Reader::Participant { account, .. } => account,
        }
    }
}

fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

impl Accounts {
    /// From the settings the template gives: `OWNER_ACCOUNT`, `PARTICIPANT_ACCOUNTS` (comma
    /// separated, may be empty), `PARTICIPANT_ROLE_NAME`, `PARTICIPANT_EXTERNAL_ID` and the
    /// partition. A malformed setting stops the function at start-up, naming it.
    pub fn from_settings(
        partition: &str,
        owner: &str,
        participants: &str,
        role_name: &str,
        external_id: &str,
    ) -> Result<Accounts, Error> {
        if !is_account_id(owner) {
            return Err(Error::Config(format!(
                "OWNER_ACCOUNT {owner:?} is not a 12-digit account id"
            )));
        }
        let mut listed = BTreeSet::new();
        for id in participants
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !is_account_id(id) {
                return Err(Error::Config(format!(
                    "PARTICIPANT_ACCOUNTS: {id:?} is not a 12-digit account id"
                )));
            }
            if id != owner {
                listed.insert(id.to_owned());
            }
        }
        if !listed.is_empty() && (role_name.is_empty() || external_id.is_empty()) {
            return Err(Error::Config(
                "PARTICIPANT_ROLE_NAME and PARTICIPANT_EXTERNAL_ID are required when \
                 PARTICIPANT_ACCOUNTS lists accounts"
                    .into(),
            ));
        }
        Ok(Accounts {
            owner: owner.to_owned(),
            participants: listed,
            role_arn_prefix: format!("arn:{partition}:iam::"),
            role_name: role_name.to_owned(),
            external_id: external_id.to_owned(),
        })
    }

    /// Only the owner's account (no participants).
    pub fn owner_only(owner: &str) -> Accounts {
        Accounts {
            owner: owner.to_owned(),
            participants: BTreeSet::new(),
            role_arn_prefix: "arn:aws:iam::".into(),
            role_name: String::new(),
            external_id: String::new(),
        }
    }

    fn participant(&self, account: &str) -> Reader {
        Reader::Participant {
            account: account.to_owned(),
            role_arn: format!("{}{account}:role/{}", self.role_arn_prefix, self.role_name),
        }
    }

    /// Who reads the environment of an event from `account` (the envelope's `account`;
    /// an event without one is the owner's). An account that is not listed is refused:
    /// an `InvalidInput` error naming the field, the account and the event.
    pub fn reader(&self, event_id: &str, account: Option<&str>) -> Result<Reader, Error> {
        match account {
            None => Ok(Reader::Own {
                account: self.owner.clone(),
            }),
            Some(a) if a == self.owner => Ok(Reader::Own {
                account: a.to_owned(),
            }),
            Some(a) if self.participants.contains(a) => Ok(self.participant(a)),
            Some(a) => Err(Error::InvalidEvent {
                event_id: event_id.to_owned(),
                field: "account".into(),
                reason: format!(
                    "account {a} is neither this deployment's ({}) nor a listed participant \
                     ({}): add it to ParticipantAccounts and deploy infra/participant.yaml \
                     there; nothing was changed",
                    self.owner,
                    self.listed()
                ),
            }),
        }
    }

    /// Every account the reconciler looks at: the owner's first, then each participant's.
    pub fn all(&self) -> Vec<Reader> {
        std::iter::once(Reader::Own {
            account: self.owner.clone(),
        })
        .chain(self.participants.iter().map(|a| self.participant(a)))
        .collect()
    }

    fn listed(&self) -> String {
        match self.participants.len() {
            0 => "none listed".into(),
            _ => self
                .participants
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts::from_settings(
            "aws",
            "123456789012",
            " 111111111111, 222222222222 ,",
            "mwaa-ops-participant",
            "ext-1",
        )
        .unwrap()
    }

    #[test]
    fn the_owner_reads_its_own_and_participants_through_their_role() {
        let a = accounts();
        assert_eq!(
            a.reader("ev", Some("123456789012")).unwrap(),
            Reader::Own {
                account: "123456789012".into()
            }
        );
        assert_eq!(a.reader("ev", None).unwrap().account(), "123456789012");
        assert_eq!(
            a.reader("ev", Some("222222222222")).unwrap(),
            Reader::Participant {
                account: "222222222222".into(),
                role_arn: "arn:aws:iam::222222222222:role/mwaa-ops-participant".into()
            }
        );
        let all: Vec<String> = a.all().iter().map(|r| r.account().to_owned()).collect();
        assert_eq!(all, ["123456789012", "111111111111", "222222222222"]);
    }

    #[test]
    fn an_unlisted_account_is_refused_naming_the_field_the_account_and_the_event() {
        let err = accounts().reader("ev-9", Some("333333333333")).unwrap_err();
        assert_eq!(err.kind(), common::ErrorKind::InvalidInput);
        let text = err.to_string();
        for part in [
            "ev-9",
            "`account`",
            "333333333333",
            "111111111111, 222222222222",
            "nothing was changed",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let lonely = Accounts::owner_only("123456789012")
            .reader("ev", Some("111111111111"))
            .unwrap_err()
            .to_string();
        assert!(lonely.contains("none listed"), "{lonely}");
    }

    #[test]
    fn bad_settings_name_the_setting() {
        for (owner, listed, role, ext, setting) in [
            ("12345", "", "r", "e", "OWNER_ACCOUNT"),
            ("123456789012", "1111", "r", "e", "PARTICIPANT_ACCOUNTS"),
            (
                "123456789012",
                "111111111111",
                "",
                "e",
                "PARTICIPANT_ROLE_NAME",
            ),
            (
                "123456789012",
                "111111111111",
                "r",
                "",
                "PARTICIPANT_EXTERNAL_ID",
            ),
        ] {
            let err = Accounts::from_settings("aws", owner, listed, role, ext)
                .unwrap_err()
                .to_string();
            assert!(err.contains(setting), "{setting}: {err}");
        }
        // The owner listed as a participant is still read with its own credentials.
        let a = Accounts::from_settings("aws", "123456789012", "123456789012", "", "").unwrap();
        assert!(a.participants.is_empty());
    }
}
