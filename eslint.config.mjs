import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Protocol cores are pure state machines: no frameworks, no I/O, no clocks, no randomness.
const impureModules = ['@nestjs/*', 'typeorm', 'kafkajs', 'pg', '@opentelemetry/*', 'fs', 'node:*', 'crypto', 'net', 'http'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.local/**', 'coverage/**', 'deploy/**', '**/*.mjs', '**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // Tests read JSON responses whose shape the assertions themselves check.
    files: ['test/**/*.ts', '**/*.spec.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['src/protocols/**/*.ts'],
    ignores: ['src/protocols/**/*.spec.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: impureModules.map((group) => ({ group: [group], message: 'protocol cores stay pure' })) }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'process', 'performance'],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'time comes in as an input' },
        { object: 'Math', property: 'random', message: 'randomness comes from the driver or the simulator seed' },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'FunctionDeclaration[async=true]', message: 'protocol cores are synchronous' },
        { selector: 'ArrowFunctionExpression[async=true]', message: 'protocol cores are synchronous' },
        { selector: "NewExpression[callee.name='Date']", message: 'time comes in as an input' },
      ],
    },
  },
);
