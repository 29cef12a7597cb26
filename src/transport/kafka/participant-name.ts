/** What a participant may be called: it becomes part of topic names and database identifiers. */
export const PARTICIPANT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
