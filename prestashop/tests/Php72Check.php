<?php
/**
 * Finds constructs newer than PHP 7.2 with token_get_all (Debian's PHP 8.2 cannot lint for 7.2).
 */
class Php72Check
{
    /** functions and constants newer than 7.2 */
    const NEWER_NAMES = [
        'str_contains', 'str_starts_with', 'str_ends_with', 'array_key_first', 'array_key_last',
        'is_countable', 'get_debug_type', 'fdiv', 'array_is_list', 'hrtime', 'mb_str_split',
        'get_resource_id', 'json_validate', 'JSON_THROW_ON_ERROR', 'enum_exists',
    ];

    const MODIFIERS = [T_PUBLIC, T_PROTECTED, T_PRIVATE, T_STATIC, T_VAR, T_ABSTRACT, T_FINAL];

    /**
     * @return array<int, string> "line N: what" for each finding
     */
    public static function check($code)
    {
        $tokens = [];
        foreach (token_get_all($code) as $token) {
            if (is_array($token) && in_array($token[0], [T_WHITESPACE, T_COMMENT, T_DOC_COMMENT], true)) {
                continue;
            }
            $tokens[] = is_array($token) ? $token : [$token, $token, 0];
        }
        $findings = [];
        $line = 1;
        $parens = []; // for each open ( or [: 'array', 'call', 'params', 'group'
        $signature = null; // inside a function signature: ['depth' => parens depth, 'default' => bool, 'return' => bool]
        $count = count($tokens);
        for ($i = 0; $i < $count; ++$i) {
            list($kind, $text) = $tokens[$i];
            if ($tokens[$i][2]) {
                $line = $tokens[$i][2];
            }
            $prev = $i > 0 ? $tokens[$i - 1][0] : null;
            $next = $i + 1 < $count ? $tokens[$i + 1][0] : null;
            $add = function ($what) use (&$findings, &$line) {
                $findings[] = 'line ' . $line . ': ' . $what;
            };
            $named = [
                'T_FN' => 'arrow function (7.4)', 'T_MATCH' => 'match (8.0)',
                'T_NULLSAFE_OBJECT_OPERATOR' => 'nullsafe operator ?-> (8.0)', 'T_ENUM' => 'enum (8.1)',
                'T_READONLY' => 'readonly (8.1)', 'T_ATTRIBUTE' => 'attribute #[...] (8.0)',
                'T_COALESCE_EQUAL' => '??= (7.4)',
            ];
            foreach ($named as $constant => $what) {
                if (defined($constant) && $kind === constant($constant)) {
                    $add($what);
                }
            }
            if (($kind === T_LNUMBER || $kind === T_DNUMBER) && (strpos($text, '_') !== false || stripos($text, '0o') === 0)) {
                $add('numeric literal separator or 0o octal (7.4/8.1)');
            }
            if ($kind === T_STRING && in_array($text, self::NEWER_NAMES, true) && $prev !== T_OBJECT_OPERATOR && $prev !== T_DOUBLE_COLON && $prev !== T_FUNCTION) {
                $add($text . ' (newer than 7.2)');
            }
            if ($kind === T_END_HEREDOC && preg_match('/^\s/', $text)) {
                $add('indented heredoc end (7.3)');
            }
            if ($kind === T_VARIABLE && $next === T_DOUBLE_COLON && $i + 2 < $count && $tokens[$i + 2][0] === T_CLASS) {
                $add('$object::class (8.0)');
            }
            if ($kind === T_THROW && !in_array($prev, [';', '{', '}', ':', ')', T_ELSE, T_OPEN_TAG], true)) {
                $add('throw as an expression (8.0)');
            }
            if ($kind === T_CATCH) {
                $j = $i + 2;
                while ($j < $count && $tokens[$j][0] !== ')' && $tokens[$j][0] !== T_VARIABLE) {
                    ++$j;
                }
                if ($j < $count && $tokens[$j][0] === ')') {
                    $add('catch without a variable (8.0)');
                }
            }
            if (in_array($kind, [T_PUBLIC, T_PROTECTED, T_PRIVATE, T_VAR], true)) {
                if ($signature !== null) {
                    $add('constructor property promotion (8.0)');
                } else {
                    $j = $i + 1;
                    while ($j < $count && in_array($tokens[$j][0], self::MODIFIERS, true)) {
                        ++$j;
                    }
                    if ($j < $count && !in_array($tokens[$j][0], [T_VARIABLE, T_FUNCTION, T_CONST], true)) {
                        $add('typed property (7.4)');
                    }
                }
            }
            if ($kind === T_FUNCTION) {
                $signature = ['depth' => count($parens) + 1, 'default' => false, 'return' => false, 'started' => false];
            }
            if ($kind === '(' || $kind === '[' || $kind === T_CURLY_OPEN || $kind === T_DOLLAR_OPEN_CURLY_BRACES) {
                if ($kind === '[') {
                    $parens[] = 'array';
                } elseif ($kind !== '(') {
                    $parens[] = 'group';
                } elseif ($signature !== null && !$signature['started']) {
                    $parens[] = 'params';
                    $signature['started'] = true;
                } elseif ($prev === T_ARRAY || $prev === T_LIST) {
                    $parens[] = 'array';
                } elseif (in_array($prev, [T_STRING, T_VARIABLE, ')', ']', T_STATIC, T_NAME_QUALIFIED, T_NAME_FULLY_QUALIFIED, T_NAME_RELATIVE], true) && !in_array($i > 1 ? $tokens[$i - 2][0] : null, [T_FUNCTION], true)) {
                    $parens[] = 'call';
                    if ($next === T_ELLIPSIS && $i + 2 < $count && $tokens[$i + 2][0] === ')') {
                        $add('first-class callable syntax (8.1)');
                    }
                } else {
                    $parens[] = 'group';
                }
                continue;
            }
            if ($kind === ')' || $kind === ']' || $kind === '}') {
                if ($kind === '}' && (!$parens || end($parens) !== 'group')) {
                    continue;
                }
                $closed = array_pop($parens);
                if ($prev === ',' && $closed === 'call') {
                    $add('trailing comma in a call (7.3)');
                }
                if ($prev === ',' && $closed === 'params') {
                    $add('trailing comma in parameters (8.0)');
                }
                if ($closed === 'params' && $signature !== null) {
                    $signature['return'] = true;
                }
                continue;
            }
            $context = $parens ? end($parens) : null;
            if ($kind === T_ELLIPSIS && $context === 'array' && ($prev === '[' || $prev === '(' || $prev === ',')) {
                $add('spread in an array (7.4)');
            }
            if ($context === 'call' && ($prev === '(' || $prev === ',') && $kind === T_STRING && $next === ':') {
                $add('named argument (8.0)');
            }
            if ($signature !== null) {
                if ($kind === '{' || $kind === ';' || ($kind === T_DOUBLE_ARROW)) {
                    $signature = null;
                    continue;
                }
                $inParams = $context === 'params' && count($parens) === $signature['depth'];
                if ($inParams && $kind === '=') {
                    $signature['default'] = true;
                }
                if ($inParams && $kind === ',') {
                    $signature['default'] = false;
                }
                $typePosition = ($inParams && !$signature['default']) || ($signature['return'] && !$parens || $signature['return'] && count($parens) < $signature['depth']);
                if ($typePosition) {
                    if ($kind === '|') {
                        $add('union type (8.0)');
                    }
                    if (defined('T_AMPERSAND_NOT_FOLLOWED_BY_VAR_OR_VARARG') && $kind === T_AMPERSAND_NOT_FOLLOWED_BY_VAR_OR_VARARG) {
                        $add('intersection type (8.1)');
                    }
                    if ($kind === T_STRING && in_array(strtolower($text), ['mixed', 'never', 'null', 'false', 'true'], true)) {
                        $add($text . ' type (8.0+)');
                    }
                    if ($kind === T_STATIC && $signature['return']) {
                        $add('static return type (8.0)');
                    }
                }
            }
        }

        return $findings;
    }
}

if (PHP_SAPI === 'cli' && isset($argv) && realpath($argv[0]) === __FILE__) {
    $failed = false;
    foreach (array_slice($argv, 1) as $path) {
        foreach (Php72Check::check((string) file_get_contents($path)) as $finding) {
            fwrite(STDERR, $path . ' ' . $finding . "\n");
            $failed = true;
        }
    }
    exit($failed ? 1 : 0);
}
