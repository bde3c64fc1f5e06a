"""FlowForge's common library: settings, database, auth, telemetry and the contracts
(job configuration, run events, task payloads) that the services share.

No service logic lives here."""
