#pragma once
// The one header users include.
#include <kiln/core/error.hpp>
