-- Run once by the postgres image on an empty data directory.
-- The coordinators' shared decision log (2pc, 3pc).
CREATE DATABASE coordinator;
-- One database per acceptor replica (paxos-commit): an acceptor's promises and accepted
-- values must survive on their own, so no two acceptors may share storage.
CREATE DATABASE coordinator_acceptor_1;
CREATE DATABASE coordinator_acceptor_2;
CREATE DATABASE coordinator_acceptor_3;
-- Each example service owns its database.
CREATE DATABASE inventory;
CREATE DATABASE payments;
CREATE DATABASE orders;
