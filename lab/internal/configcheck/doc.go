// Package configcheck holds only a test: it checks the xvsd configuration
// that package lab writes against package config, the parser xvsd uses. It
// lives apart from lab so that lab's own build and tests do not depend on
// the dataplane packages that config imports.
package configcheck
