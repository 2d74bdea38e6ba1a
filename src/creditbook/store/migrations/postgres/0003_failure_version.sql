-- A counter bumped with every recorded authentication failure, so that server processes can
-- cache ban decisions and re-check only when some process recorded a new failure.
INSERT INTO meta (name, value) VALUES ('failure_version', 0);
