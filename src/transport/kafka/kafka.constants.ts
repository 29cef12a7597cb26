export const KAFKA_TOPICS = Symbol('KAFKA_TOPICS');
/** Logical patterns of the coordinator's Kafka handlers; the server adds the topic prefix. */
export const COORDINATOR_PATTERN = 'coordinator';
export const PARTICIPANTS_PATTERN = 'participants';
