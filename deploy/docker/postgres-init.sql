-- The demo database of docker-compose.yml: Catagram's role and its table.
-- The password is only the first one: rotate it with Coffer.
CREATE ROLE catagram LOGIN PASSWORD 'catagram-initial';
CREATE TABLE cats (name text);
INSERT INTO cats VALUES ('tom'), ('felix'), ('garfield');
GRANT SELECT ON cats TO catagram;
