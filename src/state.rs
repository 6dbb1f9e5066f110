//! The parts of `GET /state` that `/metrics` lacks: each service's endpoint and forwarding, and
//! each backend's health-check detail. Fields sluice may add later are ignored.
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct State {
    pub epoch: u64,
    pub services: Vec<Service>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Service {
    pub name: String,
    pub vip: String,
    pub port: u16,
    pub protocol: String,
    pub forwarding: String,
    pub backends: Vec<Backend>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Backend {
    pub address: String,
    pub health_check: Option<Health>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Health {
    pub kind: String,
    pub consecutive_fail: u64,
    pub last_error: Option<String>,
}

impl State {
    pub fn parse(text: &str) -> Result<State, String> {
        serde_json::from_str(text).map_err(|e| format!("not the /state JSON: {e}"))
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The health check of `backend` in `service`, if it has one.
    pub fn health(&self, service: &str, backend: &str) -> Option<&Health> {
        self.service(service)?
            .backends
            .iter()
            .find(|b| b.address == backend)?
            .health_check
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_reads_the_state_shape() {
        let text = r#"{"epoch": 3, "reloads": {"success": 1, "failure": 0},
            "services": [{"name": "web", "vip": "198.51.100.10", "port": 80, "protocol": "tcp",
              "forwarding": "ipip", "fingerprint": null, "packets": 5, "bytes": 9,
              "backends": [{"address": "192.0.2.11", "up": false, "weight": 1, "flows": 0,
                "packets": 0, "health_check": {"kind": "tcp", "consecutive_ok": 0,
                "consecutive_fail": 4, "last_error": "connection refused", "probes": 9,
                "failures": 4}}]}],
            "neighbours": []}"#;
        let s = State::parse(text).unwrap();
        assert_eq!(s.epoch, 3);
        assert_eq!(s.service("web").unwrap().forwarding, "ipip");
        let h = s.health("web", "192.0.2.11").unwrap();
        assert_eq!(h.last_error.as_deref(), Some("connection refused"));
        assert_eq!(h.consecutive_fail, 4);
        assert!(s.health("web", "192.0.2.99").is_none());
        assert!(State::parse("{\"services\": 5}").is_err());
        assert!(State::parse("<html>").is_err());
    }
}
