// The Korean edition's search (book.toml: additional-js), loaded after mdBook's searcher.
//
// mdBook's searcher splits a query with elasticlunr.tokenizer and runs each word through the
// function registered as "trimmer". elasticlunr's own trimmer strips every letter outside
// ASCII, so nothing was left of a Hangul word. Here a query is split as the builder split the
// pages when it indexed them (tools/mdbook-dockling/src/search.rs: runs of letters, digits
// and _ in any script, lowercased), and a Korean particle at the end of a word is dropped:
// "컨테이너를" looks for "컨테이너", and the `expand` option then finds every indexed word
// that starts with it ("컨테이너는", "컨테이너의").
(function () {
    'use strict';
    if (typeof elasticlunr === 'undefined') {
        return; // search is off on this page
    }
    // Longest first, so "에서" is dropped whole rather than as "서".
    var PARTICLES = [
        '에서는', '에게서', '으로서', '으로써', '으로는', '이라는', '입니다', '합니다',
        '에서', '에게', '까지', '부터', '처럼', '보다', '으로', '이나', '하고', '이며',
        '이고', '라는', '은', '는', '이', '가', '을', '를', '의', '에', '로', '와', '과',
        '도', '만'
    ];
    var ENDS_IN_HANGUL = /[\uac00-\ud7a3]$/;
    function stem(word) {
        if (!ENDS_IN_HANGUL.test(word)) {
            return word;
        }
        for (var i = 0; i < PARTICLES.length; i++) {
            var p = PARTICLES[i];
            // Keep at least two syllables: "높이" is a word, not "높" and a particle.
            if (word.length >= p.length + 2 && word.slice(-p.length) === p) {
                return word.slice(0, -p.length);
            }
        }
        return word;
    }
    elasticlunr.tokenizer = function (query) {
        if (query === null || query === undefined) {
            return [];
        }
        var text = Array.isArray(query) ? query.join(' ') : String(query);
        return text
            .toLowerCase()
            .split(/[^\p{L}\p{N}_]+/u)
            .filter(function (w) { return w !== ''; })
            .map(stem);
    };
    elasticlunr.Pipeline.registerFunction(function (word) {
        return word.replace(/^[^\p{L}\p{N}_]+|[^\p{L}\p{N}_]+$/gu, '');
    }, 'trimmer');
})();
